-- 0001_initial: tasks, runs, dependency edges, task groups, the claim index,
-- task queues and the append-only event log.
--
-- Conventions: every time is timestamptz and comes from the server's clock
-- as a parameter (never now()); states and reasons are text guarded by CHECK
-- constraints; user documents (payload, extra, tags) are JSONB; everything
-- the service queries or updates is a plain column.

-- Microseconds since the Unix epoch, exact (extract() returns numeric).
-- The store reads every time through this so no text parsing is needed.
CREATE FUNCTION epoch_us(t timestamptz) RETURNS bigint
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  RETURN (extract(epoch FROM t) * 1000000)::bigint;

-- One row per task group. A group is created by its first task; every task
-- in it shares its scheduler_id; a sealed group accepts no more tasks;
-- `expires` is the latest expiry of its tasks.
CREATE TABLE task_groups (
  task_group_id text PRIMARY KEY,
  scheduler_id text NOT NULL,
  sealed timestamptz,  -- NULL while open
  expires timestamptz NOT NULL
);
CREATE INDEX task_groups_expires ON task_groups (expires);

-- One row per task. The definition columns never change after creation
-- (priority excepted); the bookkeeping columns at the end do:
--   unresolved_dependencies  edges of this task not yet satisfied; the task
--                            gets its first run when it reaches zero.
--   ever_resolved            some run of this task was ever resolved with no
--                            retry following (satisfies all-resolved edges).
--   ever_completed           some run completed (satisfies all-completed).
--   resolved                 the task is resolved right now (latest run
--                            resolved, no retry pending); cleared by a rerun.
--                            Drives the deadline index and group progress.
CREATE TABLE tasks (
  task_id text PRIMARY KEY,
  task_queue_id text NOT NULL,
  scheduler_id text NOT NULL,
  task_group_id text NOT NULL
    REFERENCES task_groups DEFERRABLE INITIALLY DEFERRED,
  dependencies text[] NOT NULL,
  requires text NOT NULL
    CHECK (requires IN ('all-completed', 'all-resolved')),
  routes text[] NOT NULL,
  priority int NOT NULL CHECK (priority BETWEEN 0 AND 6),
  retries int NOT NULL CHECK (retries BETWEEN 0 AND 49),
  retries_left int NOT NULL CHECK (retries_left BETWEEN 0 AND retries),
  created timestamptz NOT NULL,
  deadline timestamptz NOT NULL CHECK (deadline >= created),
  expires timestamptz NOT NULL CHECK (expires >= deadline),
  scopes text[] NOT NULL,
  payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  metadata_name text NOT NULL,
  metadata_description text NOT NULL,
  metadata_owner text NOT NULL,
  metadata_source text NOT NULL,
  tags jsonb NOT NULL CHECK (jsonb_typeof(tags) = 'object'),
  extra jsonb NOT NULL CHECK (jsonb_typeof(extra) = 'object'),
  unresolved_dependencies int NOT NULL DEFAULT 0
    CHECK (unresolved_dependencies >= 0),
  ever_resolved boolean NOT NULL DEFAULT false,
  ever_completed boolean NOT NULL DEFAULT false,
  resolved boolean NOT NULL DEFAULT false,
  CHECK (ever_resolved OR NOT resolved)
);
CREATE INDEX tasks_group ON tasks (task_group_id, task_id);
CREATE INDEX tasks_expires ON tasks (expires);
-- The deadline resolver only ever looks at unresolved tasks.
CREATE INDEX tasks_unresolved_deadline ON tasks (deadline) WHERE NOT resolved;

-- One row per run. A task's state is its latest run's state, or
-- "unscheduled" when it has none.
CREATE TABLE runs (
  task_id text NOT NULL REFERENCES tasks ON DELETE CASCADE,
  run_id int NOT NULL CHECK (run_id >= 0),
  state text NOT NULL
    CHECK (state IN ('pending', 'running', 'completed', 'failed',
                     'exception')),
  reason_created text NOT NULL
    CHECK (reason_created IN ('scheduled', 'retry', 'task-retry', 'rerun',
                              'exception')),
  reason_resolved text
    CHECK (reason_resolved IN ('completed', 'failed', 'deadline-exceeded',
                               'canceled', 'claim-expired', 'worker-shutdown',
                               'malformed-payload', 'resource-unavailable',
                               'internal-error', 'intermittent-task')),
  worker_group text,
  worker_id text,
  taken_until timestamptz,
  scheduled timestamptz NOT NULL,
  started timestamptz,
  resolved timestamptz,
  PRIMARY KEY (task_id, run_id),
  -- Unresolved runs carry no resolution; resolved runs always do.
  CHECK ((state IN ('pending', 'running')) =
         (reason_resolved IS NULL AND resolved IS NULL)),
  CHECK (state <> 'running' OR (worker_group IS NOT NULL AND
                                worker_id IS NOT NULL AND
                                taken_until IS NOT NULL AND
                                started IS NOT NULL)),
  CHECK (state <> 'completed' OR reason_resolved = 'completed'),
  CHECK (state <> 'failed' OR reason_resolved = 'failed'),
  CHECK (state <> 'exception' OR
         reason_resolved NOT IN ('completed', 'failed'))
);
-- Claim expiry and "claimed" counts scan running runs only.
CREATE INDEX runs_running ON runs (taken_until) WHERE state = 'running';

-- The store guards every transition in its WHERE clauses; this trigger is
-- the backstop that makes an illegal transition impossible whatever the
-- caller: pending -> running | exception, running -> completed | failed |
-- exception, and a resolved run never changes again.
CREATE FUNCTION runs_guard_transition() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.state IN ('completed', 'failed', 'exception') OR NOT (
       (OLD.state = 'pending' AND NEW.state IN ('running', 'exception')) OR
       (OLD.state = 'running' AND
        NEW.state IN ('completed', 'failed', 'exception'))) THEN
    RAISE EXCEPTION 'run %/% cannot go from % to %',
      OLD.task_id, OLD.run_id, OLD.state, NEW.state
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER runs_guard_transition
  BEFORE UPDATE ON runs FOR EACH ROW
  WHEN (OLD.state IN ('completed', 'failed', 'exception') OR
        OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION runs_guard_transition();

-- Dependency edges: `dependent` waits for `required`. `required` has no
-- foreign key on purpose: an edge outlives an expired dependency so the
-- dependent's definition stays explainable.
CREATE TABLE task_dependencies (
  dependent text NOT NULL REFERENCES tasks ON DELETE CASCADE,
  required text NOT NULL,
  satisfied boolean NOT NULL,
  PRIMARY KEY (dependent, required)
);
-- Resolving a task visits its dependents: O(dependents) through this index.
CREATE INDEX task_dependencies_required
  ON task_dependencies (required, dependent);

-- The claim index: one row per pending run. Workers take rows ordered by
-- priority (highest first), then insertion order (seq).
CREATE TABLE pending (
  task_id text NOT NULL,
  run_id int NOT NULL,
  task_queue_id text NOT NULL,
  priority int NOT NULL,
  seq bigserial NOT NULL,
  PRIMARY KEY (task_id, run_id),
  FOREIGN KEY (task_id, run_id) REFERENCES runs ON DELETE CASCADE
);
CREATE INDEX pending_claim ON pending (task_queue_id, priority DESC, seq);
-- A queue table: rows live briefly, so vacuum it often to keep the head of
-- the claim index free of dead entries.
ALTER TABLE pending SET (autovacuum_vacuum_scale_factor = 0.0,
                         autovacuum_vacuum_threshold = 1000,
                         autovacuum_vacuum_cost_delay = 0);

-- Task queues seen by a task or a claim (ListTaskQueues).
CREATE TABLE task_queues (
  task_queue_id text PRIMARY KEY,
  last_date_active timestamptz  -- last claim; NULL until a worker asks
);

-- The append-only event log (WatchEvents, replay). Written in the same
-- transaction as the change it records.
CREATE TABLE events (
  event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL
    CHECK (kind IN ('task-defined', 'task-pending', 'task-running',
                    'task-completed', 'task-failed', 'task-exception',
                    'artifact-created', 'task-group-resolved',
                    'task-group-sealed', 'task-priority-changed')),
  task_id text,
  task_group_id text,
  task_queue_id text,
  run_id int,
  time timestamptz NOT NULL,
  routes text[] NOT NULL DEFAULT '{}',
  body jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_time ON events USING brin (time);
