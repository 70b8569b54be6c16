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
-- Active statuses must match controlplane.contracts.ACTIVE_STATUSES and the predicate of the
-- partial index run_active_class_idx (resource_class, tenant), which serves both counts. The
-- counts stay near their limits (beyond them nothing is admitted), so they read few rows.
--
-- Runs per minute come from per-second counters (controlplane_tenantratecounter): the sum
-- of the counters of the last 60 seconds, a read of at most 60 rows whatever the tenant's
-- rate (a second's runs leave the window together: 1 s resolution).
--
-- Arguments left NULL are not checked. verdict is NULL (admitted) or the quota refused:
-- max_concurrent_runs, max_concurrent_by_class, class_capacity, runs_per_minute, cost_budget;
-- the counts come back for the refusal's message. An admitted run raises the counter of the
-- current second (with a rate limit) and the tenant's usage of the budget period (with a
-- budget) by its estimated cost.
CREATE OR REPLACE FUNCTION honua_quota_admit(
    p_tenant bigint,
    p_class text,
    p_max_tenant integer,
    p_max_tenant_class integer,
    p_class_capacity integer,
    p_rate_limit integer,
    p_now timestamptz,
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
DECLARE
    v_second timestamptz := date_trunc('second', p_now);
    v_new_second boolean;
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
        SELECT coalesce(sum(c.runs), 0) INTO recent
          FROM controlplane_tenantratecounter c
         WHERE c.tenant_id = p_tenant AND c.second > p_now - interval '60 seconds';
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
    END IF;

    -- Admitted: count it.
    IF p_rate_limit IS NOT NULL THEN
        INSERT INTO controlplane_tenantratecounter AS c (tenant_id, second, runs)
        VALUES (p_tenant, v_second, 1)
        ON CONFLICT (tenant_id, second) DO UPDATE SET runs = c.runs + 1
        RETURNING (xmax = 0) INTO v_new_second;
        IF v_new_second THEN  -- once a second at most: drop counters out of the window
            DELETE FROM controlplane_tenantratecounter c
             WHERE c.tenant_id = p_tenant AND c.second <= p_now - interval '60 seconds';
        END IF;
    END IF;
    IF p_budget_units IS NOT NULL THEN
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
