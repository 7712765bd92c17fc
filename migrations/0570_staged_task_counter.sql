-- 0570_staged_task_counter: a staged graph keeps the number of its staged
-- tasks on its stage row.
--
-- Each staged batch answers with the number of tasks staged so far. That
-- number was counted over the whole stage on every batch, so staging a
-- graph of n tasks in batches of b read n^2 / (2b) rows: 100 million for a
-- 1,000,000-task graph in batches of 5,000. The stage row now holds the
-- count, raised by each batch by the tasks it inserted (a batch sent again
-- inserts none). Concurrent batches of one graph still insert their tasks
-- side by side and take turns only on this one small row, at their end.
ALTER TABLE task_graph_stages
  ADD COLUMN staged_tasks bigint NOT NULL DEFAULT 0;
UPDATE task_graph_stages s
SET staged_tasks = (SELECT count(*) FROM task_graph_staged_tasks t
                    WHERE t.graph_id = s.graph_id);
