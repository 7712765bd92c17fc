// The SQL of PgStore's task-graph, task-group, priority and event-log
// operations (pg_graph_store.cc), as named constants with $n parameters,
// prepared on every pooled connection next to pg_sql.h's.
//
// Graph statements work on whole graphs (sets of rows passed as arrays and
// expanded with unnest), so a 100,000-task graph is a handful of
// statements, not a round trip per task. They follow pg_sql.h's locking
// order: task groups (in id order) before tasks.
#ifndef DROVER_QUEUE_STORE_PG_GRAPH_SQL_H_
#define DROVER_QUEUE_STORE_PG_GRAPH_SQL_H_

#include "queue/store/pg_pool.h"

namespace drover::queue::store::sql {

// The rows of a batch of tasks, one array per column, all the same length:
// $2 task_id, $3 task_queue_id, $4 scheduler_id, $5 task_group_id,
// $6 dependencies (each a text[] literal), $7 requires, $8 routes (text[]
// literals), $9 priority, $10 retries, $11 created, $12 deadline,
// $13 expires, $14 scopes (text[] literals), $15 payload (JSON),
// $16..$19 metadata name/description/owner/source, $20 tags (JSON),
// $21 extra (JSON). Spliced into the statements below at compile time.
#define DROVER_GRAPH_BATCH_ROWS                                              \
  "SELECT u.task_id, u.task_queue_id, u.scheduler_id, u.task_group_id, "     \
  "u.dependencies::text[] AS dependencies, u.requires, "                     \
  "u.routes::text[] AS routes, u.priority, u.retries, u.created, "           \
  "u.deadline, u.expires, u.scopes::text[] AS scopes, "                      \
  "u.payload::jsonb AS payload, u.metadata_name, u.metadata_description, "   \
  "u.metadata_owner, u.metadata_source, u.tags::jsonb AS tags, "             \
  "u.extra::jsonb AS extra "                                                 \
  "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], " \
  "$7::text[], $8::text[], $9::int[], $10::int[], $11::timestamptz[], "      \
  "$12::timestamptz[], $13::timestamptz[], $14::text[], $15::text[], "       \
  "$16::text[], $17::text[], $18::text[], $19::text[], $20::text[], "        \
  "$21::text[]) AS u(task_id, task_queue_id, scheduler_id, task_group_id, "  \
  "dependencies, requires, routes, priority, retries, created, deadline, "   \
  "expires, scopes, payload, metadata_name, metadata_description, "          \
  "metadata_owner, metadata_source, tags, extra)"

#define DROVER_GRAPH_COLUMNS                                                \
  "task_id, task_queue_id, scheduler_id, task_group_id, dependencies, "     \
  "requires, routes, priority, retries, created, deadline, expires, "       \
  "scopes, payload, metadata_name, metadata_description, metadata_owner, " \
  "metadata_source, tags, extra"

// Appends a batch to stage $1 (created at $22 by its first batch). Ids
// already staged are not inserted; returns those (at most 20) and the
// number of tasks the stage holds now. The stage row is written after the
// tasks (it counts what they inserted), so concurrent batches of one graph
// insert side by side and queue only on that row, at their end.
inline constexpr PreparedStatement kStageGraphTasks = {
    "drover_stage_graph_tasks",
    "WITH ins AS ("
    "  INSERT INTO task_graph_staged_tasks (graph_id, " DROVER_GRAPH_COLUMNS
    ")  SELECT $1, b.* FROM (" DROVER_GRAPH_BATCH_ROWS
    ") b ON CONFLICT (graph_id, task_id) DO NOTHING"
    "  RETURNING task_id"
    "), stage AS ("
    "  INSERT INTO task_graph_stages (graph_id, created, staged_tasks)"
    "  VALUES ($1, $22::timestamptz, (SELECT count(*) FROM ins))"
    "  ON CONFLICT (graph_id) DO UPDATE"
    "  SET staged_tasks = task_graph_stages.staged_tasks"
    "                     + EXCLUDED.staged_tasks"
    "  RETURNING staged_tasks"
    ") "
    "SELECT (SELECT staged_tasks FROM stage) AS staged,"
    "       ARRAY(SELECT x FROM unnest($2::text[]) x"
    "             WHERE x NOT IN (SELECT task_id FROM ins) LIMIT 20)"
    "         AS repeated"};

// What graph validation needs of the staged tasks of $1.
inline constexpr PreparedStatement kStagedGraphShape = {
    "drover_staged_graph_shape", R"sql(
SELECT task_id, task_group_id, scheduler_id, dependencies,
       epoch_us(deadline) AS deadline_us, epoch_us(expires) AS expires_us
FROM task_graph_staged_tasks
WHERE graph_id = $1
)sql"};

// Existing tasks among $1 (dependencies outside the graph), locked FOR
// SHARE in id order (the probes follow the sorted ids) so none resolves or
// expires unseen before the commit.
inline constexpr PreparedStatement kLockExternalDependencies = {
    "drover_lock_external_dependencies", R"sql(
SELECT t.task_id, epoch_us(t.expires) AS expires_us
FROM (SELECT DISTINCT task_id FROM unnest($1::text[]) AS task_id
      ORDER BY 1) u
     CROSS JOIN LATERAL (SELECT task_id, expires FROM tasks k
                         WHERE k.task_id = u.task_id
                         FOR SHARE) t
)sql"};

// Ids among $1 that are taken already (at most 20). $1 holds every id of
// a graph, each probed through the primary key (LATERAL ... OFFSET 0 is
// never flattened into a join); as "= ANY ($1)" the planner took a
// sequential scan testing every stored row against the whole id array (28 s
// for a 100,000-task graph over 10,000 stored tasks).
inline constexpr PreparedStatement kExistingTaskIds = {
    "drover_existing_task_ids", R"sql(
SELECT t.task_id
FROM unnest($1::text[]) AS u(task_id)
     CROSS JOIN LATERAL (SELECT task_id FROM tasks k
                         WHERE k.task_id = u.task_id OFFSET 0) t
ORDER BY t.task_id LIMIT 20
)sql"};

// The existing groups among $1, locked in id order (against sealing and
// other graphs joining them).
inline constexpr PreparedStatement kLockTaskGroups = {
    "drover_lock_task_groups", R"sql(
SELECT task_group_id, scheduler_id, sealed IS NOT NULL AS sealed
FROM task_groups
WHERE task_group_id = ANY ($1::text[])
ORDER BY task_group_id
FOR NO KEY UPDATE
)sql"};

// Creates the validated graph: stage $1 plus the batch $2..$21, at $22.
// Edges on existing tasks are satisfied per the dependent's rule; edges
// inside the graph are not (their tasks are new). Groups are created or
// extended, tasks inserted with their unresolved-dependency counters,
// ready tasks get run 0 pending and a claim row; events: task-defined for
// every task, then task-pending for the ready ones; the stage is dropped.
// Returns the counts and the queues that got pending work (to notify after
// the commit).
inline constexpr PreparedStatement kCommitGraph = {
    "drover_commit_graph",
    "WITH src AS MATERIALIZED ("
    "  SELECT " DROVER_GRAPH_COLUMNS
    "  FROM task_graph_staged_tasks WHERE graph_id = $1"
    "  UNION ALL "
    "  SELECT " DROVER_GRAPH_COLUMNS " FROM (" DROVER_GRAPH_BATCH_ROWS
    ") b"
    "), edge AS MATERIALIZED ("
    "  SELECT s.task_id AS dependent, d.required,"
    "         coalesce((SELECT CASE WHEN s.requires = 'all-resolved'"
    "                               THEN t.ever_resolved"
    "                               ELSE t.ever_completed END"
    "                   FROM tasks t WHERE t.task_id = d.required),"
    "                  false) AS satisfied"
    "  FROM src s CROSS JOIN LATERAL unnest(s.dependencies) AS d(required)"
    "), cnt AS MATERIALIZED ("
    "  SELECT dependent, count(*) FILTER (WHERE NOT satisfied) AS n"
    "  FROM edge GROUP BY dependent"
    "), grp AS ("
    "  INSERT INTO task_groups (task_group_id, scheduler_id, expires)"
    "  SELECT task_group_id, min(scheduler_id), max(expires)"
    "  FROM src GROUP BY task_group_id ORDER BY task_group_id"
    "  ON CONFLICT (task_group_id) DO UPDATE"
    "  SET expires = greatest(task_groups.expires, EXCLUDED.expires)"
    "), ins AS ("
    "  INSERT INTO tasks (" DROVER_GRAPH_COLUMNS
    ", retries_left, unresolved_dependencies)"
    "  SELECT s.task_id, s.task_queue_id, s.scheduler_id, s.task_group_id,"
    "         s.dependencies, s.requires, s.routes, s.priority, s.retries,"
    "         s.created, s.deadline, s.expires, s.scopes, s.payload,"
    "         s.metadata_name, s.metadata_description, s.metadata_owner,"
    "         s.metadata_source, s.tags, s.extra, s.retries,"
    "         coalesce(c.n, 0)"
    "  FROM src s LEFT JOIN cnt c ON c.dependent = s.task_id"
    "  RETURNING task_id, task_queue_id, task_group_id, priority, routes,"
    "            unresolved_dependencies"
    "), edges AS ("
    "  INSERT INTO task_dependencies (dependent, required, satisfied)"
    "  SELECT dependent, required, satisfied FROM edge"
    "), queue AS ("
    "  INSERT INTO task_queues (task_queue_id)"
    "  SELECT DISTINCT task_queue_id FROM src"
    "  ON CONFLICT (task_queue_id) DO NOTHING"
    "), r AS ("
    "  INSERT INTO runs (task_id, run_id, state, reason_created, scheduled)"
    "  SELECT task_id, 0, 'pending', 'scheduled', $22::timestamptz"
    "  FROM ins WHERE unresolved_dependencies = 0"
    "  RETURNING *"
    "), p AS ("
    "  INSERT INTO pending (task_id, run_id, task_queue_id, priority)"
    "  SELECT r.task_id, r.run_id, i.task_queue_id, i.priority"
    "  FROM r JOIN ins i USING (task_id)"
    "  ORDER BY i.priority DESC, r.task_id"
    "), e AS ("
    "  INSERT INTO events (kind, task_id, task_group_id, task_queue_id,"
    "                      run_id, time, routes, body)"
    "  SELECT kind, task_id, task_group_id, task_queue_id, run_id,"
    "         $22::timestamptz, routes, body"
    "  FROM (SELECT 0 AS ord, 'task-defined' AS kind, i.task_id,"
    "               i.task_group_id, i.task_queue_id, NULL::int AS run_id,"
    "               i.routes, '{}'::jsonb AS body"
    "        FROM ins i"
    "        UNION ALL"
    "        SELECT 1, 'task-pending', r.task_id, i.task_group_id,"
    "               i.task_queue_id, r.run_id, i.routes,"
    "               jsonb_build_object('run', to_jsonb(r) - 'task_id')"
    "        FROM r JOIN ins i USING (task_id)) x"
    "  ORDER BY ord, task_id"
    "), dropped AS ("
    "  DELETE FROM task_graph_stages WHERE graph_id = $1"
    "), queues AS MATERIALIZED ("
    "  SELECT DISTINCT i.task_queue_id FROM r JOIN ins i USING (task_id)"
    ") "
    "SELECT (SELECT count(*) FROM ins) AS created,"
    "       (SELECT count(*) FROM r) AS pending,"
    "       ARRAY(SELECT task_queue_id FROM queues ORDER BY 1) AS queues"};

// Which tasks of the batch $2..$21 differ from what is stored: with $22 =
// 'staged', from the tasks staged under graph $1 (ids not staged are new,
// not different); with $22 = 'tasks', from the existing tasks (a missing
// task is reported as 'task_id'). Names the first differing field as the
// API spells it; at most 20 rows, by task id. Run only on the retry paths,
// so it may compare whole rows.
inline constexpr PreparedStatement kGraphBatchDifferences = {
    "drover_graph_batch_differences",
    "SELECT task_id, difference FROM ("
    "  SELECT b.task_id, CASE"
    "    WHEN x.task_id IS NULL THEN"
    "      CASE WHEN $22::text = 'tasks' THEN 'task_id' END"
    "    WHEN x.task_queue_id IS DISTINCT FROM b.task_queue_id"
    "      THEN 'task.task_queue_id'"
    "    WHEN x.scheduler_id IS DISTINCT FROM b.scheduler_id"
    "      THEN 'task.scheduler_id'"
    "    WHEN x.task_group_id IS DISTINCT FROM b.task_group_id"
    "      THEN 'task.task_group_id'"
    "    WHEN x.dependencies IS DISTINCT FROM b.dependencies"
    "      THEN 'task.dependencies'"
    "    WHEN x.requires IS DISTINCT FROM b.requires THEN 'task.requirement'"
    "    WHEN x.routes IS DISTINCT FROM b.routes THEN 'task.routes'"
    "    WHEN x.priority IS DISTINCT FROM b.priority THEN 'task.priority'"
    "    WHEN x.retries IS DISTINCT FROM b.retries THEN 'task.retries'"
    "    WHEN x.created IS DISTINCT FROM b.created THEN 'task.created'"
    "    WHEN x.deadline IS DISTINCT FROM b.deadline THEN 'task.deadline'"
    "    WHEN x.expires IS DISTINCT FROM b.expires THEN 'task.expires'"
    "    WHEN x.scopes IS DISTINCT FROM b.scopes THEN 'task.scopes'"
    "    WHEN x.payload IS DISTINCT FROM b.payload THEN 'task.payload'"
    "    WHEN x.metadata_name IS DISTINCT FROM b.metadata_name"
    "      THEN 'task.metadata.name'"
    "    WHEN x.metadata_description IS DISTINCT FROM b.metadata_description"
    "      THEN 'task.metadata.description'"
    "    WHEN x.metadata_owner IS DISTINCT FROM b.metadata_owner"
    "      THEN 'task.metadata.owner'"
    "    WHEN x.metadata_source IS DISTINCT FROM b.metadata_source"
    "      THEN 'task.metadata.source'"
    "    WHEN x.tags IS DISTINCT FROM b.tags THEN 'task.tags'"
    "    WHEN x.extra IS DISTINCT FROM b.extra THEN 'task.extra'"
    "  END AS difference"
    "  FROM (" DROVER_GRAPH_BATCH_ROWS
    ") b"
    "  LEFT JOIN LATERAL ("
    "    SELECT " DROVER_GRAPH_COLUMNS
    "    FROM task_graph_staged_tasks s"
    "    WHERE $22::text = 'staged' AND s.graph_id = $1"
    "      AND s.task_id = b.task_id"
    "    UNION ALL "
    "    SELECT " DROVER_GRAPH_COLUMNS
    "    FROM tasks t"
    "    WHERE $22::text = 'tasks' AND t.task_id = b.task_id"
    "  ) x ON true"
    ") d "
    "WHERE difference IS NOT NULL "
    "ORDER BY task_id LIMIT 20"};

#undef DROVER_GRAPH_BATCH_ROWS
#undef DROVER_GRAPH_COLUMNS

// The answer recorded for committed graph $1 (see migration 0500).
inline constexpr PreparedStatement kFindGraphCommit = {
    "drover_find_graph_commit", R"sql(
SELECT last_batch, tasks, pending FROM task_graph_commits WHERE graph_key = $1
)sql"};

// Records graph $1's answer: $2 tasks in the committing call, $3 created,
// $4 pending, at $5.
inline constexpr PreparedStatement kRecordGraphCommit = {
    "drover_record_graph_commit", R"sql(
INSERT INTO task_graph_commits (graph_key, last_batch, tasks, pending,
                                committed)
VALUES ($1, $2, $3, $4, $5::timestamptz)
ON CONFLICT (graph_key) DO UPDATE
SET last_batch = EXCLUDED.last_batch, tasks = EXCLUDED.tasks,
    pending = EXCLUDED.pending, committed = EXCLUDED.committed
)sql"};

// One page of ids of group $1's tasks after $2, at most $3.
inline constexpr PreparedStatement kGroupTaskPage = {
    "drover_group_task_page", R"sql(
SELECT task_id FROM tasks
WHERE task_group_id = $1 AND task_id > $2
ORDER BY task_id
LIMIT $3
)sql"};

// One page of ids of the tasks depending on $1, after $2, at most $3.
inline constexpr PreparedStatement kDependentPage = {
    "drover_dependent_page", R"sql(
SELECT dependent AS task_id FROM task_dependencies
WHERE required = $1 AND dependent > $2
ORDER BY dependent
LIMIT $3
)sql"};

// A group and its tasks per state (each task's latest run, or
// "unscheduled"), counted on read: maintaining counters on the group row
// would make every transition in a group queue up on that one row.
inline constexpr PreparedStatement kTaskGroupInfo = {"drover_task_group_info",
                                                     R"sql(
SELECT g.scheduler_id, epoch_us(g.sealed) AS sealed_us,
       epoch_us(g.expires) AS expires_us,
       (SELECT coalesce(jsonb_object_agg(x.state, x.n), '{}'::jsonb)::text
        FROM (SELECT coalesce((SELECT r.state FROM runs r
                               WHERE r.task_id = t.task_id
                               ORDER BY r.run_id DESC LIMIT 1),
                              'unscheduled') AS state,
                     count(*) AS n
              FROM tasks t WHERE t.task_group_id = g.task_group_id
              GROUP BY 1) x) AS counts,
       NOT EXISTS (SELECT 1 FROM tasks t
                   WHERE t.task_group_id = g.task_group_id
                     AND NOT t.resolved) AS resolved
FROM task_groups g
WHERE g.task_group_id = $1
)sql"};

// Seals group $1 at $2 unless sealed; records task-group-sealed.
inline constexpr PreparedStatement kSealTaskGroup = {"drover_seal_task_group",
                                                     R"sql(
WITH g AS (
  UPDATE task_groups SET sealed = $2::timestamptz
  WHERE task_group_id = $1 AND sealed IS NULL
  RETURNING task_group_id, scheduler_id
), e AS (
  INSERT INTO events (kind, task_group_id, time, body)
  SELECT 'task-group-sealed', task_group_id, $2::timestamptz,
         jsonb_build_object('scheduler_id', scheduler_id)
  FROM g
)
SELECT count(*) AS sealed FROM g
)sql"};

// Up to $2 unresolved tasks of group $1, locked in id order, with their
// latest run.
inline constexpr PreparedStatement kLockUnresolvedGroupTasks = {
    "drover_lock_unresolved_group_tasks", R"sql(
SELECT t.task_id,
       (SELECT max(r.run_id) FROM runs r WHERE r.task_id = t.task_id)
         AS latest_run
FROM tasks t
WHERE t.task_group_id = $1 AND NOT t.resolved
ORDER BY t.task_id
LIMIT $2
FOR NO KEY UPDATE OF t
)sql"};

// Sets the priority of the unresolved, locked task $1 to $2 (name $3),
// with its claim row; records task-priority-changed when it changed.
inline constexpr PreparedStatement kChangeTaskPriority = {
    "drover_change_task_priority", R"sql(
WITH t AS (
  UPDATE tasks SET priority = $2::int
  WHERE task_id = $1 AND NOT resolved AND priority <> $2::int
  RETURNING task_id, task_queue_id, task_group_id, routes
), p AS (
  UPDATE pending SET priority = $2::int
  WHERE task_id = (SELECT task_id FROM t)
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, time,
                      routes, body)
  SELECT 'task-priority-changed', task_id, task_group_id, task_queue_id,
         $4::timestamptz, routes, jsonb_build_object('priority', $3::text)
  FROM t
)
SELECT count(*) AS changed FROM t
)sql"};

// The same for every unresolved task of group $1 (locked in id order).
inline constexpr PreparedStatement kChangeTaskGroupPriority = {
    "drover_change_task_group_priority", R"sql(
WITH locked AS MATERIALIZED (
  SELECT task_id FROM tasks
  WHERE task_group_id = $1 AND NOT resolved AND priority <> $2::int
  ORDER BY task_id
  FOR NO KEY UPDATE
), t AS (
  UPDATE tasks x SET priority = $2::int
  WHERE x.task_id = ANY (ARRAY(SELECT task_id FROM locked))
    AND NOT x.resolved
  RETURNING x.task_id, x.task_queue_id, x.task_group_id, x.routes
), p AS (
  UPDATE pending SET priority = $2::int
  WHERE task_id = ANY (ARRAY(SELECT task_id FROM t))
), e AS (
  INSERT INTO events (kind, task_id, task_group_id, task_queue_id, time,
                      routes, body)
  SELECT 'task-priority-changed', task_id, task_group_id, task_queue_id,
         $4::timestamptz, routes, jsonb_build_object('priority', $3::text)
  FROM t ORDER BY task_id
)
SELECT count(*) AS changed FROM t
)sql"};

// The highest event id drawn so far (committed or not).
inline constexpr PreparedStatement kEventIdsDrawn = {"drover_event_ids_drawn",
                                                     R"sql(
SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS drawn
FROM event_ids
)sql"};

// The transactions running now that have an xid (each holds the lock on
// its own xid from the moment it is assigned until after its commit is
// visible). A snapshot cannot answer this: its xmax is the newest
// *completed* xid + 1, so a transaction assigned a newer xid is missing
// from both its xip list and its xmin.
inline constexpr PreparedStatement kRunningWriters = {"drover_running_writers",
                                                      R"sql(
SELECT coalesce(array_agg(transactionid), '{}')::text AS xids
FROM pg_locks
WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted
  AND pid <> pg_backend_pid()
)sql"};

// Whether every transaction of $1 (kRunningWriters) has ended.
inline constexpr PreparedStatement kWritersEnded = {"drover_writers_ended",
                                                    R"sql(
SELECT NOT EXISTS (SELECT 1 FROM pg_locks
                   WHERE locktype = 'transactionid'
                     AND mode = 'ExclusiveLock' AND granted
                     AND transactionid = ANY ($1::text::xid[])) AS ended
)sql"};

// Events with $1 < id <= $2 matching the filters ($3 group, $4 queue, $5
// route prefix, $6 kinds; empty: any), in id order, at most $7.
inline constexpr PreparedStatement kReadEvents = {"drover_read_events", R"sql(
SELECT event_id, kind, coalesce(task_id, '') AS task_id,
       coalesce(task_group_id, '') AS task_group_id,
       coalesce(task_queue_id, '') AS task_queue_id, run_id,
       epoch_us(time) AS time_us, routes, body::text AS body
FROM events
WHERE event_id > $1 AND event_id <= $2
  AND ($3 = '' OR task_group_id = $3)
  AND ($4 = '' OR task_queue_id = $4)
  AND ($5 = '' OR EXISTS (SELECT 1 FROM unnest(routes) AS x(route)
                          WHERE starts_with(x.route, $5)))
  AND (cardinality($6::text[]) = 0 OR kind = ANY ($6::text[]))
ORDER BY event_id
LIMIT $7
)sql"};

// Group resolution: takes the oldest $1 checks, locks their groups (SKIP
// LOCKED: replicas share the work), consumes every check of those groups,
// and records task-group-resolved (at $2) for each left with no unresolved
// task. A check is only visible once the resolution that wrote it has
// committed, and checks and tasks are read in one snapshot, so the last
// resolution of a group always leads to exactly one announcement. Checks
// of groups that no longer exist are dropped.
inline constexpr PreparedStatement kAnnounceResolvedGroups = {
    "drover_announce_resolved_groups", R"sql(
WITH picked AS MATERIALIZED (
  SELECT DISTINCT c.task_group_id FROM (
    SELECT task_group_id FROM task_group_checks ORDER BY check_id LIMIT $1
  ) c
), grp AS MATERIALIZED (
  SELECT g.task_group_id, g.scheduler_id FROM task_groups g
  WHERE g.task_group_id = ANY (ARRAY(SELECT task_group_id FROM picked))
  ORDER BY g.task_group_id
  FOR NO KEY UPDATE SKIP LOCKED
), gone AS (
  DELETE FROM task_group_checks c
  WHERE c.task_group_id = ANY (ARRAY(SELECT task_group_id FROM grp))
  RETURNING 1
), orphans AS (
  DELETE FROM task_group_checks c
  WHERE c.task_group_id = ANY (ARRAY(SELECT task_group_id FROM picked))
    AND NOT EXISTS (SELECT 1 FROM task_groups g
                    WHERE g.task_group_id = c.task_group_id)
  RETURNING 1
), done AS (
  SELECT g.task_group_id, g.scheduler_id FROM grp g
  WHERE NOT EXISTS (SELECT 1 FROM tasks t
                    WHERE t.task_group_id = g.task_group_id
                      AND NOT t.resolved)
), e AS (
  INSERT INTO events (kind, task_group_id, time, body)
  SELECT 'task-group-resolved', task_group_id, $2::timestamptz,
         jsonb_build_object('scheduler_id', scheduler_id)
  FROM done ORDER BY task_group_id
)
SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM orphans)
         AS consumed,
       (SELECT count(*) FROM done) AS announced
)sql"};

// Retention: of the oldest $2 events, deletes those older than $1 (ids
// follow time closely, so expired events are a prefix and this never scans
// the live part of the log). SKIP LOCKED: a replica deleting at the same
// time takes the next batch instead of waiting for this one.
inline constexpr PreparedStatement kDeleteExpiredEvents = {
    "drover_delete_expired_events", R"sql(
DELETE FROM events
WHERE event_id = ANY (ARRAY(
  SELECT o.event_id FROM (SELECT event_id, time FROM events
                          ORDER BY event_id LIMIT $2
                          FOR UPDATE SKIP LOCKED) o
  WHERE o.time < $1::timestamptz))
RETURNING event_id
)sql"};

// Refreshes the statistics of the tables a large graph commit filled. Until
// autovacuum notices (up to a minute), the planner would cost the graph's
// rows with its defaults for unanalyzed tables and could pick whole-table
// scans; ANALYZE also makes every connection rebuild its cached plans.
inline constexpr char kAnalyzeGraphTables[] =
    "ANALYZE tasks, task_dependencies, runs, pending";

// Task-graph stages created before $1 and never committed, and commit
// records (migration 0500) older than $1: at most $2 of each.
inline constexpr PreparedStatement kDeleteStaleGraphStages = {
    "drover_delete_stale_graph_stages", R"sql(
WITH stages AS (
  DELETE FROM task_graph_stages
  WHERE graph_id = ANY (ARRAY(SELECT graph_id FROM task_graph_stages
                              WHERE created < $1::timestamptz
                              ORDER BY created LIMIT $2))
  RETURNING 1
), commits AS (
  DELETE FROM task_graph_commits
  WHERE graph_key = ANY (ARRAY(SELECT graph_key FROM task_graph_commits
                               WHERE committed < $1::timestamptz
                               ORDER BY committed LIMIT $2))
  RETURNING 1
)
SELECT (SELECT count(*) FROM stages) AS stages,
       (SELECT count(*) FROM commits) AS commits
)sql"};

inline constexpr PreparedStatement kGraphStatements[] = {
    kStageGraphTasks,
    kStagedGraphShape,       kLockExternalDependencies,
    kExistingTaskIds,        kLockTaskGroups,
    kCommitGraph,            kGroupTaskPage,
    kDependentPage,
    kTaskGroupInfo,          kSealTaskGroup,
    kLockUnresolvedGroupTasks, kChangeTaskPriority,
    kChangeTaskGroupPriority, kEventIdsDrawn,
    kRunningWriters,         kWritersEnded,
    kReadEvents,             kAnnounceResolvedGroups,
    kDeleteExpiredEvents,    kDeleteStaleGraphStages,
    kGraphBatchDifferences,  kFindGraphCommit,
    kRecordGraphCommit,
};

}  // namespace drover::queue::store::sql

#endif  // DROVER_QUEUE_STORE_PG_GRAPH_SQL_H_
