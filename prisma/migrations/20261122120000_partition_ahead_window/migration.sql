-- The application role could make a partition for any month through
-- person_auth_log_create_partition (1900-02, 9999-12). Such a month stays empty, as the database,
-- not the caller, sets created_at; yet each is a table with its indexes that every read across
-- the log opens and locks, and that retention later drops with an entry of its own. The role now
-- gets a function bounded to the months the partition manager keeps ready (src/audit/partitions.ts);
-- any month stays the owner's (the migrations, an administrator importing old entries).
CREATE FUNCTION "person_auth_log_create_partition_ahead"(month_start DATE) RETURNS TEXT
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  this_month TIMESTAMP := date_trunc('month', now() AT TIME ZONE 'UTC');
BEGIN
  -- This month and up to 120 ahead (CUSTOS_AUDIT_FORWARD_MONTHS at most), with a month to spare
  -- either side for a server whose clock is off the database's at a month's turn.
  IF date_trunc('month', month_start::timestamp) NOT BETWEEN this_month - interval '1 month' AND this_month + interval '121 months' THEN
    RAISE EXCEPTION 'no partition for %: the months from % to % only', to_char(month_start, 'YYYY-MM'),
      to_char(this_month - interval '1 month', 'YYYY-MM'), to_char(this_month + interval '121 months', 'YYYY-MM')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN person_auth_log_create_partition(month_start);
END
$$;

DO $$
BEGIN
  -- Runs as the owner: resolve names in this schema only, with pg_temp last.
  EXECUTE format('ALTER FUNCTION person_auth_log_create_partition_ahead(date) SET search_path = %I, pg_temp', current_schema());
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'custos_app') THEN
    GRANT EXECUTE ON FUNCTION person_auth_log_create_partition_ahead(DATE) TO custos_app;
    REVOKE EXECUTE ON FUNCTION person_auth_log_create_partition(DATE) FROM custos_app;
  END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION person_auth_log_create_partition_ahead(DATE) FROM PUBLIC;
