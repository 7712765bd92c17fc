// The SQL of PgStore: every statement as a named constant with $n
// parameters, prepared once on every pooled connection. Times are passed as
// timestamptz text (pg::TimeParam) and read back as epoch microseconds
// (epoch_us, defined by migration 0001).
//
// Locking order, followed by every statement so concurrent transitions wait
// for each other instead of deadlocking: a task row, then its pending row,
// then its runs; dependents' task rows after the task they depend on, in
// task_id order. ClaimWork never locks task rows.
//
// Plans: the pool forces generic plans, and these are built from estimates
// that cannot see parameter values (LIMIT $2 is guessed at 10% of a table).
// So statements reach rows only through keys, whatever the statistics:
// joins against CTE results are written as "= ANY (ARRAY(...))" probes and
// correlated lookups. pg_store_test's GenericPlansNeverScanBigTables checks
// every statement here on a populated database.
#ifndef DROVER_QUEUE_STORE_PG_SQL_H_
#define DROVER_QUEUE_STORE_PG_SQL_H_

#include "queue/store/pg_pool.h"

namespace drover::queue::store::sql {

// The NOTIFY channel whose payload is the task queue id that got pending
// work. PostgreSQL delivers one notification per distinct payload per
// transaction.
inline constexpr char kPendingChannel[] = "drover_pending";

// Statements that make runs pending return the ids of the queues that got
// work instead of calling pg_notify themselves; PgPendingPublisher sends
// them after the commit (pg_pending_publisher.h says why). $1 channel,
// $2 task queue ids.
inline constexpr char kNotifyPending[] =
    "SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q";

// CreateTask in one statement (so one round trip, atomic in autocommit):
// locks the dependencies (so none resolves unseen meanwhile), and when all
// exist joins or starts the task group (upsert: the row lock orders it
// against sealing; a group of another scheduler or a sealed group is left
// unchanged and the task not inserted), inserts the task unless the id
// exists, its edges, its queue, task-defined, and -- when nothing blocks
// it -- run 0 pending with its claim-index row, task-pending and a NOTIFY.
// Returns whether it inserted, the group's scheduler and sealed flag, the
// dependency ids that do not exist and those not yet satisfied.
// $1 task_id, $2 task_queue_id, $3 scheduler_id, $4 task_group_id,
// $5 dependencies (no repeats), $6 requires, $7 routes, $8 priority,
// $9 retries, $10 created, $11 deadline, $12 expires, $13 scopes,
// $14 payload, $15..$18 metadata name/description/owner/source, $19 tags,
// $20 extra, $21 now.
inline constexpr PreparedStatement kCreateTask = {"drover_create_task", R"sql(
WITH deps AS MATERIALIZED (
  SELECT task_id,
         CASE WHEN $6::text = 'all-resolved' THEN ever_resolved
              ELSE ever_completed END AS satisfied
  FROM tasks
  WHERE task_id = ANY ($5::text[])
  FOR SHARE
), complete AS MATERIALIZED (
  SELECT (SELECT count(*) FROM deps) = cardinality($5::text[]) AS ok
), grp AS (
  INSERT INTO task_groups (task_group_id, scheduler_id, expires)
  SELECT $4, $3, $12::timestamptz FROM complete WHERE ok
  ON CONFLICT (task_group_id) DO UPDATE
  SET expires = CASE
        WHEN task_groups.scheduler_id = EXCLUDED.scheduler_id
             AND task_groups.sealed IS NULL
        THEN greatest(task_groups.expires, EXCLUDED.expires)
        ELSE task_groups.expires END
  RETURNING scheduler_id, sealed IS NOT NULL AS sealed
), inserted AS (
  INSERT INTO tasks (task_id, task_queue_id, scheduler_id, task_group_id,
      dependencies, requires, routes, priority, retries, retries_left,
      created, deadline, expires, scopes, payload, metadata_name,
      metadata_description, metadata_owner, metadata_source, tags, extra,
      unresolved_dependencies)
  SELECT $1, $2, $3, $4, $5::text[], $6::text, $7::text[], $8::int,
      $9::int, $9::int, $10::timestamptz, $11::timestamptz, $12::timestamptz,
      $13::text[], $14::jsonb, $15, $16, $17, $18, $19::jsonb, $20::jsonb,
      (SELECT count(*) FROM deps WHERE NOT satisfied)
  FROM grp
  WHERE grp.scheduler_id = $3 AND NOT grp.sealed
  ON CONFLICT (task_id) DO NOTHING
  RETURNING task_id, task_queue_id, task_group_id, priority, routes,
            unresolved_dependencies
), edges AS (
  INSERT INTO task_dependencies (dependent, required, satisfied)
  SELECT i.task_id, d.task_id, d.satisfied FROM inserted i CROSS JOIN deps d
), queue AS (
  INSERT INTO task_queues (task_queue_id)
  SELECT task_queue_id FROM inserted
  ON CONFLICT (task_queue_id) DO NOTHING
), r AS (
  INSERT INTO runs (task_id, run_id, state, reason_created, scheduled)
  SELECT task_id, 0, 'pending', 'scheduled', $21::timestamptz
  FROM inserted WHERE unresolved_dependencies = 0
  RETURNING *
), p AS (
  INSERT INTO pending (task_id, run_id, task_queue_id, priority)
  SELECT r.task_id, r.run_id, i.task_queue_id, i.priority
  FROM r JOIN inserted i USING (task_id)
), e AS (
  -- One INSERT, ordered, so task-defined gets the smaller event id.
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT kind, task_id, task_group_id, task_queue_id, run_id,
         $21::timestamptz, routes, body
  FROM (SELECT 0 AS ord, 'task-defined' AS kind, i.task_id, i.task_group_id,
               i.task_queue_id, NULL::int AS run_id, i.routes,
               '{}'::jsonb AS body
        FROM inserted i
        UNION ALL
        SELECT 1, 'task-pending', r.task_id, i.task_group_id, i.task_queue_id,
               r.run_id, i.routes,
               jsonb_build_object('run', to_jsonb(r) - 'task_id')
        FROM r JOIN inserted i USING (task_id)) x
  ORDER BY ord
)
SELECT EXISTS (SELECT 1 FROM inserted) AS inserted,
       (SELECT scheduler_id FROM grp) AS group_scheduler_id,
       coalesce((SELECT sealed FROM grp), false) AS group_sealed,
       ARRAY(SELECT u FROM unnest($5::text[]) AS u
             WHERE u NOT IN (SELECT task_id FROM deps) ORDER BY u) AS missing,
       ARRAY(SELECT task_id FROM deps WHERE NOT satisfied
             ORDER BY task_id) AS blocking,
       ARRAY(SELECT i.task_queue_id
             FROM r JOIN inserted i USING (task_id)) AS notified
)sql"};

// A task definition. $1 task_id.
inline constexpr PreparedStatement kGetTask = {"drover_get_task", R"sql(
SELECT task_id, task_queue_id, scheduler_id, task_group_id, dependencies,
       requires, routes, priority, retries, epoch_us(created) AS created_us,
       epoch_us(deadline) AS deadline_us, epoch_us(expires) AS expires_us,
       scopes, payload::text AS payload, metadata_name, metadata_description,
       metadata_owner, metadata_source, tags::text AS tags,
       extra::text AS extra
FROM tasks
WHERE task_id = $1
)sql"};

// Statuses of the tasks $1: one row per run (a single row of NULL run
// columns for a task without runs), by task id then run id. Each task and
// its runs are probed by key (LATERAL ... OFFSET 0 cannot be flattened
// into a join), whatever the planner guesses of the tables' sizes.
inline constexpr PreparedStatement kTaskStatuses = {"drover_task_statuses",
                                                    R"sql(
SELECT t.task_id, t.task_queue_id, t.scheduler_id, t.task_group_id,
       t.retries_left,
       epoch_us(t.deadline) AS deadline_us, epoch_us(t.expires) AS expires_us,
       CASE WHEN t.unresolved_dependencies > 0
                 AND NOT EXISTS (SELECT 1 FROM runs x
                                 WHERE x.task_id = t.task_id)
            THEN ARRAY(SELECT d.required FROM task_dependencies d
                       WHERE d.dependent = t.task_id AND NOT d.satisfied
                       ORDER BY d.required)
            ELSE '{}'::text[] END AS blocking,
       r.run_id, r.state, r.reason_created, r.reason_resolved,
       r.worker_group, r.worker_id,
       epoch_us(r.taken_until) AS taken_until_us,
       epoch_us(r.scheduled) AS scheduled_us,
       epoch_us(r.started) AS started_us,
       epoch_us(r.resolved) AS resolved_us
FROM unnest($1::text[]) AS u(task_id)
     CROSS JOIN LATERAL (SELECT * FROM tasks k
                         WHERE k.task_id = u.task_id OFFSET 0) t
     LEFT JOIN LATERAL (SELECT * FROM runs x
                        WHERE x.task_id = t.task_id OFFSET 0) r ON true
ORDER BY t.task_id, r.run_id
)sql"};

// Locks a task for a change of its runs and says where it stands.
// $1 task_id.
inline constexpr PreparedStatement kLockTask = {"drover_lock_task", R"sql(
SELECT t.resolved, epoch_us(t.deadline) AS deadline_us,
       (SELECT max(r.run_id) FROM runs r WHERE r.task_id = t.task_id)
         AS latest_run
FROM tasks t
WHERE t.task_id = $1
FOR NO KEY UPDATE OF t
)sql"};

// Gives a task without runs its first, pending run (reason "scheduled").
// Does nothing when run 0 exists. Returns the queue to notify.
// $1 task_id, $2 now.
inline constexpr PreparedStatement kScheduleFirstRun = {
    "drover_schedule_first_run", R"sql(
WITH t AS (
  SELECT task_id, task_queue_id, task_group_id, priority, routes
  FROM tasks WHERE task_id = $1
), r AS (
  INSERT INTO runs (task_id, run_id, state, reason_created, scheduled)
  SELECT task_id, 0, 'pending', 'scheduled', $2::timestamptz FROM t
  ON CONFLICT (task_id, run_id) DO NOTHING
  RETURNING *
), p AS (
  INSERT INTO pending (task_id, run_id, task_queue_id, priority)
  SELECT r.task_id, r.run_id, t.task_queue_id, t.priority
  FROM r JOIN t USING (task_id)
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT 'task-pending', r.task_id, t.task_group_id, t.task_queue_id,
         r.run_id, $2::timestamptz, t.routes,
         jsonb_build_object('run', to_jsonb(r) - 'task_id')
  FROM r JOIN t USING (task_id)
)
SELECT t.task_queue_id
FROM r JOIN t USING (task_id)
)sql"};

// The claim, in one statement: take up to $2 pending runs of queue $1,
// highest priority then oldest, skipping rows other claimers hold; delete
// them from the claim index; mark the runs running for worker ($3, $4)
// from $5 until $6; note the queue as active (at most once per $7 cut-off,
// so claimers do not queue up on its row); record task-running; return
// the definitions in claim order.
inline constexpr PreparedStatement kClaimWork = {"drover_claim_work", R"sql(
WITH picked AS (
  SELECT ctid AS row_id FROM pending
  WHERE task_queue_id = $1
  ORDER BY priority DESC, seq
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), taken AS (
  -- "= ANY (ARRAY(...))" keeps every step a TID or index probe: joins
  -- against the CTEs would let a generic plan (which guesses LIMIT $2 at
  -- 10% of the table) hash-join over a sequential scan.
  DELETE FROM pending
  WHERE ctid = ANY (ARRAY(SELECT row_id FROM picked))
  RETURNING task_id, run_id, priority, seq
), claimed AS (
  -- A task has at most one unresolved run, so its id finds the run.
  UPDATE runs r
  SET state = 'running', worker_group = $3, worker_id = $4,
      started = $5::timestamptz, taken_until = $6::timestamptz
  WHERE r.task_id = ANY (ARRAY(SELECT task_id FROM taken))
    AND r.state = 'pending'
  RETURNING r.task_id, r.run_id, r.taken_until,
            to_jsonb(r) - 'task_id' AS run
), ordered AS MATERIALIZED (
  SELECT c.*, k.priority, k.seq
  FROM claimed c JOIN taken k ON k.task_id = c.task_id AND k.run_id = c.run_id
), seen AS (
  INSERT INTO task_queues (task_queue_id, last_date_active)
  VALUES ($1, $5::timestamptz)
  ON CONFLICT (task_queue_id) DO NOTHING
), active AS (
  UPDATE task_queues SET last_date_active = $5::timestamptz
  WHERE task_queue_id = $1
    AND (last_date_active IS NULL OR last_date_active < $7::timestamptz)
), running AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT 'task-running', c.task_id, t.task_group_id, t.task_queue_id,
         c.run_id, $5::timestamptz, t.routes,
         jsonb_build_object('run', c.run)
  FROM ordered c JOIN tasks t ON t.task_id = c.task_id
  ORDER BY c.priority DESC, c.seq
)
SELECT t.task_id, t.task_queue_id, t.scheduler_id, t.task_group_id,
       t.dependencies, t.requires, t.routes, t.priority, t.retries,
       epoch_us(t.created) AS created_us, epoch_us(t.deadline) AS deadline_us,
       epoch_us(t.expires) AS expires_us, t.scopes, t.payload::text AS payload,
       t.metadata_name, t.metadata_description, t.metadata_owner,
       t.metadata_source, t.tags::text AS tags, t.extra::text AS extra,
       c.run_id, epoch_us(c.taken_until) AS taken_until_us
FROM ordered c JOIN tasks t ON t.task_id = c.task_id
ORDER BY c.priority DESC, c.seq
)sql"};

// Extends a claim held by worker ($3, $4) that has not expired at $5.
// $1 task_id, $2 run_id, $6 new taken_until.
inline constexpr PreparedStatement kReclaimRun = {"drover_reclaim_run", R"sql(
UPDATE runs SET taken_until = $6::timestamptz
WHERE task_id = $1 AND run_id = $2 AND state = 'running'
  AND worker_group = $3 AND worker_id = $4 AND taken_until > $5::timestamptz
RETURNING epoch_us(taken_until) AS taken_until_us
)sql"};

// One run, for explaining why a guarded transition did not happen.
// $1 task_id, $2 run_id.
inline constexpr PreparedStatement kGetRun = {"drover_get_run", R"sql(
SELECT state, coalesce(reason_resolved, '') AS reason_resolved,
       coalesce(worker_group, '') AS worker_group,
       coalesce(worker_id, '') AS worker_id,
       epoch_us(taken_until) AS taken_until_us
FROM runs
WHERE task_id = $1 AND run_id = $2
)sql"};

// $1 task_id.
inline constexpr PreparedStatement kTaskExists = {"drover_task_exists",
                                                  R"sql(
SELECT 1 FROM tasks WHERE task_id = $1
)sql"};

// ResolveRun for one report or a batch of concurrent ones (sharing one
// statement and one commit, see group_commit.h). Element i of the arrays
// is one report: task $1[i], running run $2[i] resolved as $3[i] for
// reason $4[i] at $5, then either retried ($6[i]: the reason is retryable
// and another run is allowed; a retry happens while retries remain and the
// deadline is ahead) with a pending run $2[i] + 1 whose reason_created is
// $7[i], or the task resolves for good and releases its dependents exactly
// as kFinishTask does: each satisfied edge decrements the dependent's
// counter (a dependent losing several dependencies in one batch drops by
// all of them) and a dependent reaching zero gets its first pending run.
// Records the resolutions, then task-pending for every new pending run.
// Task ids must be distinct. Tasks are locked in id order, then their
// released dependents in id order. Returns one row: the task ids whose run was running and is now
// resolved (`resolved`), the queues to notify, and `overlap`, true when a
// task of the batch is itself a dependent released by another task of
// the batch (one statement cannot update a row twice): the caller then
// rolls back and resolves one at a time.
inline constexpr PreparedStatement kResolveRuns = {"drover_resolve_runs", R"sql(
WITH input AS MATERIALIZED (
  SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[],
                       $6::boolean[], $7::text[])
    AS i(task_id, run_id, state, reason, retryable, retry_reason)
), t AS MATERIALIZED (
  SELECT task_id FROM tasks WHERE task_id = ANY ($1::text[])
  ORDER BY task_id
  FOR NO KEY UPDATE
), r AS (
  -- The runs are reached by key, one probe each (LATERAL ... OFFSET 0 is
  -- never flattened into a join). Given "state = 'running'", the planner
  -- read the whole of a partial index of running runs instead (it counts
  -- only live entries), and such an index holds an entry for every run
  -- that ran since the table was last vacuumed: 6,700 entries per batch
  -- 300,000 tasks into a 1,000,000-task graph, whose drain had slowed
  -- from 1,440 to 430-700 tasks/s. Spelt through coalesce (state is NOT
  -- NULL), the condition no longer matches those indexes' predicate and
  -- is still checked again on the newest row version.
  UPDATE runs u
  SET state = i.state, reason_resolved = i.reason,
      resolved = $5::timestamptz
  FROM input i
  WHERE u.ctid = ANY (ARRAY(
          SELECT x.ctid
          FROM input j
               CROSS JOIN LATERAL (SELECT ctid FROM runs k
                                   WHERE k.task_id = j.task_id
                                     AND k.run_id = j.run_id
                                   OFFSET 0) x
          WHERE j.task_id = ANY (ARRAY(SELECT task_id FROM t))))
    AND u.task_id = i.task_id AND u.run_id = i.run_id
    AND coalesce(u.state, '') = 'running'
  RETURNING u.*, i.retryable, i.retry_reason
), me AS (
  -- The retry decision reads the row being updated, i.e. its newest
  -- version, never a stale snapshot.
  UPDATE tasks k
  SET retries_left = CASE WHEN r.retryable AND k.retries_left > 0
                               AND k.deadline > $5::timestamptz
                          THEN k.retries_left - 1 ELSE k.retries_left END,
      resolved = NOT (r.retryable AND k.retries_left > 0
                      AND k.deadline > $5::timestamptz),
      ever_resolved = k.ever_resolved OR NOT (r.retryable
                                              AND k.retries_left > 0
                                              AND k.deadline > $5::timestamptz),
      ever_completed = k.ever_completed OR r.state = 'completed'
  FROM r
  WHERE k.task_id = r.task_id
  RETURNING k.task_id, k.task_queue_id, k.task_group_id, k.priority,
            k.routes, NOT k.resolved AS retried, r.run_id,
            r.state AS run_state, r.retry_reason
), retry AS (
  INSERT INTO runs (task_id, run_id, state, reason_created, scheduled)
  SELECT task_id, run_id + 1, 'pending', retry_reason, $5::timestamptz
  FROM me WHERE retried
  RETURNING *
), chk AS (
  INSERT INTO task_group_checks (task_group_id)
  SELECT DISTINCT task_group_id FROM me WHERE NOT retried
), sat AS (
  UPDATE task_dependencies e SET satisfied = true
  FROM me
  WHERE e.required = me.task_id AND NOT me.retried AND NOT e.satisfied
    AND (me.run_state = 'completed' OR
         (SELECT d.requires FROM tasks d
          WHERE d.task_id = e.dependent) = 'all-resolved')
  RETURNING e.dependent
), counts AS MATERIALIZED (
  SELECT dependent, count(*)::int AS n FROM sat GROUP BY dependent
), locked AS MATERIALIZED (
  SELECT d.task_id FROM tasks d
  WHERE d.task_id = ANY (ARRAY(SELECT dependent FROM counts))
    AND d.task_id <> ALL ($1::text[])
  ORDER BY d.task_id
  FOR NO KEY UPDATE
), dec AS (
  UPDATE tasks d
  SET unresolved_dependencies = d.unresolved_dependencies - c.n
  FROM counts c
  WHERE d.task_id = c.dependent
    AND d.task_id = ANY (ARRAY(SELECT task_id FROM locked))
  RETURNING d.task_id, d.task_queue_id, d.task_group_id, d.priority,
            d.routes, d.unresolved_dependencies
), ready AS (
  INSERT INTO runs (task_id, run_id, state, reason_created, scheduled)
  SELECT task_id, 0, 'pending', 'scheduled', $5::timestamptz
  FROM dec WHERE unresolved_dependencies = 0
  ON CONFLICT (task_id, run_id) DO NOTHING
  RETURNING *
), new_runs AS (
  SELECT n.task_id, n.run_id, m.task_queue_id, m.task_group_id, m.priority,
         m.routes, to_jsonb(n) - 'task_id' AS run
  FROM retry n JOIN me m USING (task_id)
  UNION ALL
  SELECT n.task_id, n.run_id, d.task_queue_id, d.task_group_id, d.priority,
         d.routes, to_jsonb(n) - 'task_id'
  FROM ready n JOIN dec d USING (task_id)
), p AS (
  INSERT INTO pending (task_id, run_id, task_queue_id, priority)
  SELECT task_id, run_id, task_queue_id, priority FROM new_runs
  ORDER BY priority DESC, task_id
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT kind, task_id, task_group_id, task_queue_id, run_id,
         $5::timestamptz, routes, jsonb_build_object('run', run)
  FROM (SELECT 0 AS ord, 'task-' || r.state AS kind, r.task_id,
               m.task_group_id, m.task_queue_id, r.run_id, m.routes,
               to_jsonb(r) - ARRAY['task_id', 'retryable', 'retry_reason']
                 AS run
        FROM r JOIN me m USING (task_id)
        UNION ALL
        SELECT 1, 'task-pending', task_id, task_group_id, task_queue_id,
               run_id, routes, run
        FROM new_runs) x
  ORDER BY ord, task_id
)
SELECT ARRAY(SELECT task_id FROM r) AS resolved,
       ARRAY(SELECT q.task_queue_id
             FROM (SELECT DISTINCT task_queue_id FROM new_runs) q)
         AS notified,
       EXISTS (SELECT 1 FROM counts
               WHERE dependent = ANY ($1::text[])) AS overlap
)sql"};

// Resolves the unresolved (pending or running) run $2 of a locked task as
// exception/$3 at $4 (cancel, deadline); records task-exception.
// $1 task_id.
inline constexpr PreparedStatement kResolveOpenRun = {"drover_resolve_open_run",
                                                      R"sql(
WITH r AS (
  UPDATE runs
  SET state = 'exception', reason_resolved = $3, resolved = $4::timestamptz
  WHERE task_id = $1 AND run_id = $2 AND state IN ('pending', 'running')
  RETURNING *
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT 'task-exception', r.task_id, t.task_group_id, t.task_queue_id,
         r.run_id, $4::timestamptz, t.routes,
         jsonb_build_object('run', to_jsonb(r) - 'task_id')
  FROM r JOIN tasks t ON t.task_id = r.task_id
)
SELECT run_id FROM r
)sql"};

// Gives a task that never ran a run resolved at once as exception/$3
// (reason_created "exception"): canceling or passing the deadline of an
// unscheduled task. $1 task_id, $2 run_id, $4 now.
inline constexpr PreparedStatement kInsertExceptionRun = {
    "drover_insert_exception_run", R"sql(
WITH r AS (
  INSERT INTO runs (task_id, run_id, state, reason_created, reason_resolved,
                    scheduled, resolved)
  VALUES ($1, $2, 'exception', 'exception', $3, $4::timestamptz,
          $4::timestamptz)
  RETURNING *
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT 'task-exception', r.task_id, t.task_group_id, t.task_queue_id,
         r.run_id, $4::timestamptz, t.routes,
         jsonb_build_object('run', to_jsonb(r) - 'task_id')
  FROM r JOIN tasks t ON t.task_id = r.task_id
)
SELECT run_id FROM r
)sql"};

// $1 task_id.
inline constexpr PreparedStatement kDeletePending = {"drover_delete_pending",
                                                     R"sql(
DELETE FROM pending WHERE task_id = $1
)sql"};

// A retry: spends one of the task's retries (unless none are left or the
// deadline has passed at $4) on a new pending run $2 with reason_created
// $3; records task-pending. Returns a row (the queue to notify) when it
// retried.
// $1 task_id.
inline constexpr PreparedStatement kRetryTask = {"drover_retry_task", R"sql(
WITH t AS (
  UPDATE tasks SET retries_left = retries_left - 1
  WHERE task_id = $1 AND retries_left > 0 AND deadline > $4::timestamptz
  RETURNING task_id, task_queue_id, task_group_id, priority, routes
), r AS (
  INSERT INTO runs (task_id, run_id, state, reason_created, scheduled)
  SELECT task_id, $2, 'pending', $3, $4::timestamptz FROM t
  RETURNING *
), p AS (
  INSERT INTO pending (task_id, run_id, task_queue_id, priority)
  SELECT r.task_id, r.run_id, t.task_queue_id, t.priority
  FROM r JOIN t USING (task_id)
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT 'task-pending', r.task_id, t.task_group_id, t.task_queue_id,
         r.run_id, $4::timestamptz, t.routes,
         jsonb_build_object('run', to_jsonb(r) - 'task_id')
  FROM r JOIN t USING (task_id)
)
SELECT t.task_queue_id
FROM r JOIN t USING (task_id)
)sql"};

// A rerun of a resolved, locked task: new pending run $2 (reason "rerun"),
// the task is unresolved again; records task-pending; returns the queue
// to notify.
// $1 task_id, $3 now.
inline constexpr PreparedStatement kRerunTask = {"drover_rerun_task", R"sql(
WITH t AS (
  UPDATE tasks SET resolved = false
  WHERE task_id = $1
  RETURNING task_id, task_queue_id, task_group_id, priority, routes
), r AS (
  INSERT INTO runs (task_id, run_id, state, reason_created, scheduled)
  SELECT task_id, $2, 'pending', 'rerun', $3::timestamptz FROM t
  RETURNING *
), p AS (
  INSERT INTO pending (task_id, run_id, task_queue_id, priority)
  SELECT r.task_id, r.run_id, t.task_queue_id, t.priority
  FROM r JOIN t USING (task_id)
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT 'task-pending', r.task_id, t.task_group_id, t.task_queue_id,
         r.run_id, $3::timestamptz, t.routes,
         jsonb_build_object('run', to_jsonb(r) - 'task_id')
  FROM r JOIN t USING (task_id)
)
SELECT t.task_queue_id
FROM r JOIN t USING (task_id)
)sql"};

// A task has resolved for good ($2: it completed). Marks it resolved and,
// in the same statement, satisfies the edges its resolution satisfies
// (a completion satisfies every edge, another resolution only those of
// all-resolved dependents), decrements those dependents' counters (locking
// them in task_id order), gives each dependent reaching zero that has no
// run yet its first pending run, records task-pending for those, and
// notifies their queues once each. The work is O(dependents): it reads
// only this task's edges. $1 task_id, $3 now.
inline constexpr PreparedStatement kFinishTask = {"drover_finish_task", R"sql(
WITH me AS (
  UPDATE tasks
  SET resolved = true, ever_resolved = true,
      ever_completed = ever_completed OR $2::boolean
  WHERE task_id = $1
  RETURNING task_id, task_group_id
), chk AS (
  -- Asks the task-group resolver to look at this group (see 0300).
  INSERT INTO task_group_checks (task_group_id)
  SELECT task_group_id FROM me
), sat AS (
  -- The rule is looked up per edge (a correlated primary-key probe) so no
  -- plan can ever scan the tasks table here.
  UPDATE task_dependencies e SET satisfied = true
  WHERE e.required = $1 AND NOT e.satisfied
    AND ($2::boolean OR (SELECT d.requires FROM tasks d
                         WHERE d.task_id = e.dependent) = 'all-resolved')
  RETURNING e.dependent
), locked AS MATERIALIZED (
  SELECT d.task_id FROM tasks d
  WHERE d.task_id = ANY (ARRAY(SELECT dependent FROM sat))
  ORDER BY d.task_id
  FOR NO KEY UPDATE
), dec AS (
  UPDATE tasks d
  SET unresolved_dependencies = d.unresolved_dependencies - 1
  WHERE d.task_id = ANY (ARRAY(SELECT task_id FROM locked))
  RETURNING d.task_id, d.task_queue_id, d.task_group_id, d.priority,
            d.routes, d.unresolved_dependencies
), r AS (
  INSERT INTO runs (task_id, run_id, state, reason_created, scheduled)
  SELECT task_id, 0, 'pending', 'scheduled', $3::timestamptz
  FROM dec WHERE unresolved_dependencies = 0
  ON CONFLICT (task_id, run_id) DO NOTHING
  RETURNING *
), p AS (
  INSERT INTO pending (task_id, run_id, task_queue_id, priority)
  SELECT r.task_id, r.run_id, dec.task_queue_id, dec.priority
  FROM r JOIN dec USING (task_id)
  ORDER BY dec.priority DESC, r.task_id
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT 'task-pending', r.task_id, dec.task_group_id, dec.task_queue_id,
         r.run_id, $3::timestamptz, dec.routes,
         jsonb_build_object('run', to_jsonb(r) - 'task_id')
  FROM r JOIN dec USING (task_id)
  ORDER BY r.task_id
)
SELECT (SELECT count(*) FROM me) AS resolved,
       (SELECT count(*) FROM r) AS scheduled,
       ARRAY(SELECT q.task_queue_id
             FROM (SELECT DISTINCT dec.task_queue_id
                   FROM r JOIN dec USING (task_id)) q) AS notified
)sql"};

// Claim expiry: runs still running after their taken_until ($1 now), at
// most $2, their tasks locked with SKIP LOCKED so replicas share the work;
// resolved exception/claim-expired (a reclaim that got in first wins the
// re-check). Records task-exception. Returns (task_id, run_id).
inline constexpr PreparedStatement kExpireClaims = {"drover_expire_claims",
                                                    R"sql(
WITH due AS (
  SELECT task_id FROM runs
  WHERE state = 'running' AND taken_until < $1::timestamptz
  ORDER BY taken_until
  LIMIT $2
), locked AS MATERIALIZED (
  SELECT t.task_id, t.task_queue_id, t.task_group_id, t.routes
  FROM tasks t
  WHERE t.task_id = ANY (ARRAY(SELECT task_id FROM due))
  ORDER BY t.task_id
  FOR NO KEY UPDATE SKIP LOCKED
), expired AS (
  -- At most one run of a task is running.
  UPDATE runs r
  SET state = 'exception', reason_resolved = 'claim-expired',
      resolved = $1::timestamptz
  WHERE r.task_id = ANY (ARRAY(SELECT task_id FROM locked))
    AND r.state = 'running' AND r.taken_until < $1::timestamptz
  RETURNING r.task_id, r.run_id, to_jsonb(r) - 'task_id' AS run
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                      time, routes, body)
  SELECT 'task-exception', x.task_id, l.task_group_id, l.task_queue_id,
         x.run_id, $1::timestamptz, l.routes, jsonb_build_object('run', x.run)
  FROM expired x JOIN locked l ON l.task_id = x.task_id
  ORDER BY x.task_id
)
SELECT task_id, run_id FROM expired ORDER BY task_id
)sql"};

// Unresolved tasks whose deadline ($1 now) has come, at most $2, locked
// with SKIP LOCKED.
inline constexpr PreparedStatement kLockDeadlineTasks = {
    "drover_lock_deadline_tasks", R"sql(
SELECT task_id,
       (SELECT max(r.run_id) FROM runs r WHERE r.task_id = t.task_id)
         AS latest_run
FROM tasks t
WHERE deadline <= $1::timestamptz AND NOT resolved
ORDER BY deadline
LIMIT $2
FOR NO KEY UPDATE OF t SKIP LOCKED
)sql"};

// Expiry: deletes at most $2 tasks whose expires is before $1 (runs, claim
// index rows and their own edges go with them). Returns the ids.
inline constexpr PreparedStatement kDeleteExpiredTasks = {
    "drover_delete_expired_tasks", R"sql(
WITH doomed AS (
  SELECT task_id FROM tasks
  WHERE expires < $1::timestamptz
  ORDER BY expires
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
DELETE FROM tasks
WHERE task_id = ANY (ARRAY(SELECT task_id FROM doomed))
RETURNING task_id
)sql"};

// Expired task groups that no task belongs to any more. $1 now, $2 limit.
inline constexpr PreparedStatement kDeleteExpiredTaskGroups = {
    "drover_delete_expired_task_groups", R"sql(
WITH doomed AS (
  SELECT g.task_group_id FROM task_groups g
  WHERE g.expires < $1::timestamptz
    -- OFFSET 0 keeps this a per-group index probe: pulled up into an
    -- anti-join it could hash the whole tasks table.
    AND NOT EXISTS (SELECT 1 FROM tasks t
                    WHERE t.task_group_id = g.task_group_id OFFSET 0)
  ORDER BY g.expires
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
DELETE FROM task_groups
WHERE task_group_id = ANY (ARRAY(SELECT task_group_id FROM doomed))
)sql"};

// Pending and claimed counts of queue $1.
inline constexpr PreparedStatement kQueueCounts = {"drover_queue_counts",
                                                   R"sql(
SELECT (SELECT count(*) FROM pending WHERE task_queue_id = $1) AS pending,
       -- Driven from the running runs (bounded by worker capacity), each
       -- probing its task; tasks has no index on the queue.
       (SELECT count(*) FROM runs r
        WHERE r.state = 'running'
          AND (SELECT t.task_queue_id FROM tasks t
               WHERE t.task_id = r.task_id) = $1) AS claimed,
       (SELECT epoch_us(last_date_active) FROM task_queues
        WHERE task_queue_id = $1) AS last_active_us
)sql"};

// A page of queues after id $1 (empty: from the start), at most $2.
inline constexpr PreparedStatement kListTaskQueues = {"drover_list_task_queues",
                                                      R"sql(
WITH page AS (
  SELECT task_queue_id, last_date_active FROM task_queues
  WHERE task_queue_id > $1
  ORDER BY task_queue_id
  LIMIT $2
), claimed AS (
  SELECT q.task_queue_id, count(*) AS n
  FROM (SELECT (SELECT t.task_queue_id FROM tasks t
                WHERE t.task_id = r.task_id) AS task_queue_id
        FROM runs r WHERE r.state = 'running') q
  WHERE q.task_queue_id IN (SELECT task_queue_id FROM page)
  GROUP BY q.task_queue_id
)
SELECT p.task_queue_id, epoch_us(p.last_date_active) AS last_active_us,
       (SELECT count(*) FROM pending x
        WHERE x.task_queue_id = p.task_queue_id) AS pending,
       coalesce(c.n, 0) AS claimed
FROM page p LEFT JOIN claimed c ON c.task_queue_id = p.task_queue_id
ORDER BY p.task_queue_id
)sql"};

// Every statement above, for preparing on each pooled connection.
inline constexpr PreparedStatement kAllStatements[] = {
    kCreateTask,         kGetTask,
    kTaskStatuses,         kLockTask,
    kScheduleFirstRun,   kClaimWork,
    kReclaimRun,         kGetRun,
    kTaskExists,         kResolveRuns,
    kResolveOpenRun,     kInsertExceptionRun,
    kDeletePending,      kRetryTask,
    kRerunTask,          kFinishTask,
    kExpireClaims,       kLockDeadlineTasks,
    kDeleteExpiredTasks, kDeleteExpiredTaskGroups,
    kQueueCounts,        kListTaskQueues,
};

}  // namespace drover::queue::store::sql

#endif  // DROVER_QUEUE_STORE_PG_SQL_H_
