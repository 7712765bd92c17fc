-- 0500_task_graph_commits: what each committed task graph answered, so a
-- client whose commit call timed out can send it again and get the same
-- answer instead of "tasks already exist".
--
-- graph_key is the graph_id of a staged graph, or 'task:' || the first
-- task id of a graph committed in one call without a graph_id (task ids
-- are unique, so that names the commit). last_batch counts the tasks of
-- the committing call, which a retry must repeat exactly. Rows are kept as
-- long as stages are (24 hours) and deleted by the event-retention
-- resolver. Logged, unlike the stages: the commit they record is durable.
CREATE TABLE task_graph_commits (
  graph_key text PRIMARY KEY,
  last_batch int NOT NULL,
  tasks bigint NOT NULL,
  pending bigint NOT NULL,
  committed timestamptz NOT NULL
);
CREATE INDEX task_graph_commits_committed ON task_graph_commits (committed);
