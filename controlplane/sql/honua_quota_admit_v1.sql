-- honua_quota_admit v1: admission of one submission under the tenant's quotas and the
-- capacity of its resource class. controlplane/services/runs.py calls it in a CTE of the
-- very INSERT that records the run, which inserts only when the verdict is NULL (admitted):
-- count, decide and record are one statement, and the locks taken here are held until the
-- transaction of that INSERT ends, so under concurrency a quota is never exceeded.
--
-- Locks (transaction-scoped advisory locks, always tenant before class, so two submissions
-- never wait on each other crosswise):
--   tenant: (1751 << 32) | tenant id            -- when any tenant quota is given
--   class:  (1752 << 32) | hashtext(class name) -- when a class capacity is given
--
-- A VOLATILE function takes a fresh snapshot for each query it runs (READ COMMITTED), so the
-- counts include every run committed by the previous holder of the locks (the snapshot of
-- the calling statement predates the wait and would miss them).
--
-- Active statuses must match controlplane.contracts.ACTIVE_STATUSES (and the predicate of
-- the partial index run_active_class_idx, which serves the class count).
--
-- Arguments left NULL are not checked. verdict is NULL (admitted) or the quota refused:
-- max_concurrent_runs, max_concurrent_by_class, class_capacity, runs_per_minute, cost_budget.
-- The counts come back for the refusal's message; recent is capped at the rate limit. An
-- admitted run's estimated cost is added to the tenant's usage row of the budget period.
CREATE OR REPLACE FUNCTION honua_quota_admit(
    p_tenant bigint,
    p_class text,
    p_max_tenant integer,
    p_max_tenant_class integer,
    p_class_capacity integer,
    p_rate_limit integer,
    p_window_start timestamptz,
    p_budget_units double precision,
    p_budget_period text,
    p_budget_start date,
    p_cost double precision,
    p_budget_waived boolean,
    OUT verdict text,
    OUT tenant_active integer,
    OUT tenant_class_active integer,
    OUT class_active integer,
    OUT recent integer,
    OUT budget_used double precision
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p_max_tenant IS NOT NULL OR p_max_tenant_class IS NOT NULL OR p_rate_limit IS NOT NULL
       OR p_budget_units IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock((1751::bigint << 32) | p_tenant);
    END IF;
    IF p_class_capacity IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock((1752::bigint << 32) | (hashtext(p_class)::bigint & 4294967295));
    END IF;

    IF p_max_tenant IS NOT NULL OR p_max_tenant_class IS NOT NULL THEN
        SELECT count(*), count(*) FILTER (WHERE r.resource_class = p_class)
          INTO tenant_active, tenant_class_active
          FROM controlplane_processrun r
         WHERE r.tenant_id = p_tenant
           AND r.status IN ('cancelling', 'queued', 'running', 'waiting');
        IF tenant_active >= p_max_tenant THEN
            verdict := 'max_concurrent_runs';
            RETURN;
        END IF;
        IF tenant_class_active >= p_max_tenant_class THEN
            verdict := 'max_concurrent_by_class';
            RETURN;
        END IF;
    END IF;

    IF p_class_capacity IS NOT NULL THEN
        SELECT count(*) INTO class_active
          FROM controlplane_processrun r
         WHERE r.resource_class = p_class
           AND r.status IN ('cancelling', 'queued', 'running', 'waiting');
        IF class_active >= p_class_capacity THEN
            verdict := 'class_capacity';
            RETURN;
        END IF;
    END IF;

    IF p_rate_limit IS NOT NULL THEN
        -- Served by run_tenant_created_idx; reading at most the limit keeps it bounded.
        SELECT count(*) INTO recent
          FROM (SELECT 1 FROM controlplane_processrun r
                 WHERE r.tenant_id = p_tenant AND r.created_at > p_window_start
                 LIMIT p_rate_limit) w;
        IF recent >= p_rate_limit THEN
            verdict := 'runs_per_minute';
            RETURN;
        END IF;
    END IF;

    IF p_budget_units IS NOT NULL THEN
        SELECT u.cost_units INTO budget_used
          FROM controlplane_tenantusage u
         WHERE u.tenant_id = p_tenant AND u.period = p_budget_period AND u.period_start = p_budget_start;
        budget_used := coalesce(budget_used, 0);
        -- Cost units are floats (0.1 + 0.2 > 0.3): exhausted only past a tolerance.
        IF budget_used + p_cost > p_budget_units + 1e-9 AND NOT p_budget_waived THEN
            verdict := 'cost_budget';
            RETURN;
        END IF;
        INSERT INTO controlplane_tenantusage AS u
               (tenant_id, period, period_start, cost_units, runs, updated_at)
        VALUES (p_tenant, p_budget_period, p_budget_start, p_cost, 1, now())
        ON CONFLICT (tenant_id, period, period_start) DO UPDATE
           SET cost_units = u.cost_units + EXCLUDED.cost_units,
               runs = u.runs + 1,
               updated_at = EXCLUDED.updated_at;
    END IF;
END
$$;
