-- honua_quota_usage v1: what admission needs to decide one submission, read under the quota
-- locks, in one round trip. Called by controlplane/services/quotas.py inside the transaction
-- that records the run, so the locks are held until the run row is committed.
--
-- Locks (transaction-scoped advisory locks, always tenant before class, so two submissions
-- never wait on each other crosswise):
--   tenant: (1751 << 32) | tenant id            -- the tenant's quotas
--   class:  (1752 << 32) | hashtext(class name) -- the global capacity of a resource class
--
-- A VOLATILE function takes a fresh snapshot for each query it runs (READ COMMITTED), so the
-- counts below include every run committed by the previous holder of the locks; a single
-- statement could not see them (its snapshot predates the wait).
--
-- Active statuses must match controlplane.contracts.ACTIVE_STATUSES (and the predicate of
-- the partial index run_active_class_idx, which serves the class count).
--
-- Budget: with p_budget_period set, the run's estimated cost is added to the tenant's usage
-- row of the period; budget_used is the usage before it. A refused submission rolls back.
CREATE OR REPLACE FUNCTION honua_quota_usage(
    p_tenant bigint,
    p_class text,
    p_lock_tenant boolean,
    p_lock_class boolean,
    p_count_tenant boolean,
    p_window_start timestamptz,
    p_budget_period text,
    p_budget_start date,
    p_budget_cost double precision,
    OUT tenant_active integer,
    OUT tenant_class_active integer,
    OUT class_active integer,
    OUT recent integer,
    OUT budget_used double precision
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_lock_tenant THEN
        PERFORM pg_advisory_xact_lock((1751::bigint << 32) | p_tenant);
    END IF;
    IF p_lock_class THEN
        PERFORM pg_advisory_xact_lock((1752::bigint << 32) | (hashtext(p_class)::bigint & 4294967295));
    END IF;
    IF p_count_tenant THEN
        SELECT count(*), count(*) FILTER (WHERE r.resource_class = p_class)
          INTO tenant_active, tenant_class_active
          FROM controlplane_processrun r
         WHERE r.tenant_id = p_tenant
           AND r.status IN ('cancelling', 'queued', 'running', 'waiting');
    END IF;
    IF p_lock_class THEN
        SELECT count(*) INTO class_active
          FROM controlplane_processrun r
         WHERE r.resource_class = p_class
           AND r.status IN ('cancelling', 'queued', 'running', 'waiting');
    END IF;
    IF p_window_start IS NOT NULL THEN
        SELECT count(*) INTO recent
          FROM controlplane_processrun r
         WHERE r.tenant_id = p_tenant AND r.created_at > p_window_start;
    END IF;
    IF p_budget_period IS NOT NULL THEN
        INSERT INTO controlplane_tenantusage AS u
               (tenant_id, period, period_start, cost_units, runs, updated_at)
        VALUES (p_tenant, p_budget_period, p_budget_start, p_budget_cost, 1, now())
        ON CONFLICT (tenant_id, period, period_start) DO UPDATE
           SET cost_units = u.cost_units + EXCLUDED.cost_units,
               runs = u.runs + 1,
               updated_at = EXCLUDED.updated_at
        RETURNING u.cost_units - p_budget_cost INTO budget_used;
    END IF;
END
$$;
