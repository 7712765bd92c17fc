-- 0550_pool_minimum_without_maximum: a worker pool may have a minimum
-- capacity and no maximum.
--
-- max_capacity 0 means "no maximum", but 0400's check (max_capacity >=
-- min_capacity) refused any pool with a minimum above 0 and no maximum.
-- (PostgreSQL named that check after the table alone, as it reads two
-- columns.)
ALTER TABLE worker_pools DROP CONSTRAINT worker_pools_check;
ALTER TABLE worker_pools ADD CONSTRAINT worker_pools_capacity_check
  CHECK (max_capacity = 0 OR max_capacity >= min_capacity);
