-- River's initial schema gives river_job two GIN indexes, on args and on
-- metadata. River's own work loop never uses them (only the optional
-- JobList metadata filter does), yet every job insert must update both, and
-- under concurrent inserts the GIN pending-list lock and its flushes stall
-- whole transactions: on the event-trigger benchmark (64 concurrent Hasura
-- deliveries, 2 cores) they moved the acknowledgement p99 from 13 ms to
-- 43–97 ms and cut throughput by ~10%. river_job stays small (completed jobs
-- are cleaned after a day), so an operator's ad-hoc query on args is a fast
-- sequential scan. shala migrate always applies River's migrations first,
-- so these indexes exist when this runs.
DROP INDEX IF EXISTS river_job_args_index;
DROP INDEX IF EXISTS river_job_metadata_index;
