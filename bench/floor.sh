# The floor of the benchmark: chatalot-db apply's job written by hand in shell, run on
# the host in ONE SSH session (`ssh HOST bash -s < script`). bench/run.py sends a block
# of variables first (PG_MAJOR DB ROLE VERIFIER APP_PASSWORD LOCK_ID DROPIN HBA_BLOCK
# ENV_CONTENT ENV_FILE MIGRATIONS_TGZ_B64), then this file. It reads the host before
# each change and changes only what differs, like apply; it prints `changed: WHAT` per
# change, `floor: timings PHASE=Nms...` and `floor: changed=N` at the end.
#
# What it leaves out next to apply: no package-run repair, no check/diff mode, no
# rollback of a bad setting, no password drift from an env file, no backup before
# migrations; a migration file is run with psql (split at semicolons), not as one query.
set -euo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
cd /
changed=0
did() { changed=$((changed + 1)); echo "changed: $*"; }
timings="" last=$(date +%s%N)
lap() { now=$(date +%s%N); timings="$timings $1=$(( (now - last) / 1000000 ))ms"; last=$now; }
conf=/etc/postgresql/$PG_MAJOR/main
svc=postgresql@$PG_MAJOR-main
su_psql() { runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. packages (the lists are refreshed only when apt has none)
missing=""
for p in postgresql postgresql-contrib; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -q >/dev/null; fi
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null
    did "installed$missing"
fi
lap packages

# 2. enabled and running
systemctl is-enabled -q postgresql || { systemctl enable -q postgresql; did "enabled postgresql"; }
systemctl is-active -q "$svc" || { systemctl start "$svc"; did "started $svc"; }

# 3. settings drop-in, and pg_hba.conf (the app role's block first; no trust rules)
restart=0 reload=0
dropin=$conf/conf.d/50-chatalot.conf
if [ "$(cat "$dropin" 2>/dev/null || true)" != "$DROPIN" ]; then
    printf '%s\n' "$DROPIN" > "$work/dropin"
    install -o postgres -g postgres -m 0644 "$work/dropin" "$dropin"
    restart=1
    did "wrote $dropin"
fi
hba=$conf/pg_hba.conf
if ! grep -qxF "$(printf '%s\n' "$HBA_BLOCK" | head -n1)" "$hba"; then
    { printf '%s\n\n' "$HBA_BLOCK"; cat "$hba"; } > "$work/hba"
    install -o postgres -g postgres -m 0640 "$work/hba" "$hba"
    reload=1
    did "added the app role's block to $hba"
fi
if grep -qE '^[[:space:]]*(local|host[a-z]*)[[:space:]].*[[:space:]]trust[[:space:]]*(#.*)?$' "$hba"; then
    sed -i -E -e '/^[[:space:]]*local[[:space:]]/ s/[[:space:]]trust([[:space:]]*(#.*)?)$/ peer\1/' \
        -e '/^[[:space:]]*host[a-z]*[[:space:]]/ s/[[:space:]]trust([[:space:]]*(#.*)?)$/ scram-sha-256\1/' "$hba"
    reload=1
    did "replaced trust rules in $hba"
fi
if [ $restart = 1 ]; then systemctl restart "$svc"; elif [ $reload = 1 ]; then systemctl reload "$svc"; fi
lap service-and-config

# 4. role, database, grants: one psql session (the verifier travels in the environment)
export CHATALOT_ROLE=$ROLE CHATALOT_DB=$DB CHATALOT_VERIFIER=$VERIFIER
out=$(su_psql -d postgres <<'SQL'
\getenv role CHATALOT_ROLE
\getenv db CHATALOT_DB
\getenv verifier CHATALOT_VERIFIER
SELECT 'changed: created role ' || :'role' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role');
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'role', :'verifier')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT rolpassword IS DISTINCT FROM :'verifier' OR NOT rolcanlogin OR rolsuper OR rolcreatedb
       OR rolcreaterole OR rolreplication OR rolbypassrls AS role_drift
FROM pg_authid WHERE rolname = :'role' \gset
\if :role_drift
\echo changed: altered role :role
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'role', :'verifier') \gexec
\endif
SELECT 'changed: created database ' || :'db' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db');
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT has_database_privilege('public', :'db', 'CONNECT')
       OR has_database_privilege('public', :'db', 'TEMPORARY') AS public_open \gset
\if :public_open
\echo changed: closed database :db to PUBLIC
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT ALL PRIVILEGES ON DATABASE %I TO %I', :'db', :'role') \gexec
\endif
\c :db
SELECT has_schema_privilege(:'role', 'public', 'CREATE')
       AND has_schema_privilege(:'role', 'public', 'USAGE') AS schema_ok \gset
\if :schema_ok
\else
\echo changed: granted schema public to :role
SELECT format('GRANT ALL ON SCHEMA public TO %I', :'role') \gexec
\endif
SQL
)
if [ -n "$out" ]; then
    printf '%s\n' "$out"
    changed=$((changed + $(printf '%s\n' "$out" | grep -c '^changed:')))
fi

lap role-database-grants

# 5. the env file (root, 0600)
if [ "$(cat "$ENV_FILE" 2>/dev/null || true)" != "$ENV_CONTENT" ] \
    || [ "$(stat -c '%a %U %G' "$ENV_FILE" 2>/dev/null)" != "600 root root" ]; then
    (umask 077; mkdir -p "$(dirname "$ENV_FILE")"; printf '%s\n' "$ENV_CONTENT" > "$work/env")
    install -o root -g root -m 0600 "$work/env" "$ENV_FILE"
    did "wrote $ENV_FILE"
fi
lap env-file

# 6. migrations: the ledger read as the app role, then every pending file in one psql
#    session under sqlx's advisory lock, each with its ledger row in its transaction
mkdir "$work/m"
printf '%s\n' "$MIGRATIONS_TGZ_B64" | base64 -d | tar -xz -C "$work/m"
ledger=$(su_psql -d "$DB" <<SQL
SET ROLE "$ROLE";
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
SELECT version || ' ' || encode(checksum, 'hex') || ' ' || CASE WHEN success THEN 't' ELSE 'f' END
FROM _sqlx_migrations;
SQL
)
if printf '%s\n' "$ledger" | grep -q ' f$'; then
    echo "a migration is partially applied (success = false in _sqlx_migrations)" >&2; exit 1
fi
{
    echo "SET ROLE \"$ROLE\";"
    echo "SELECT pg_advisory_lock($LOCK_ID);"
} > "$work/run.sql"
pending=0
for f in "$work"/m/*.sql; do
    base=$(basename "$f" .sql)
    version=$((10#${base%%_*}))
    description=$(printf '%s' "${base#*_}" | tr _ ' ')
    description=${description//\'/\'\'}
    sum=$(sha384sum "$f" | cut -d' ' -f1)
    row=$(printf '%s\n' "$ledger" | grep "^$version " || true)
    if [ -n "$row" ]; then
        [ "$row" = "$version $sum t" ] || { echo "migration $version was previously applied but has been modified" >&2; exit 1; }
        continue
    fi
    notx=0
    [ "$(head -c 17 "$f")" = "-- no-transaction" ] && notx=1
    {
        echo "SELECT set_config('chatalot.t0', clock_timestamp()::text, false);"
        [ $notx = 1 ] || echo "BEGIN;"
        cat "$f"
        echo
        echo "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)"
        echo "VALUES ($version, '$description', TRUE, decode('$sum', 'hex'),"
        echo "  (extract(epoch FROM clock_timestamp() - current_setting('chatalot.t0')::timestamptz) * 1000000000)::bigint);"
        [ $notx = 1 ] || echo "COMMIT;"
    } >> "$work/run.sql"
    pending=$((pending + 1))
done
if [ $pending -gt 0 ]; then
    echo "SELECT pg_advisory_unlock($LOCK_ID);" >> "$work/run.sql"
    su_psql -d "$DB" -o /dev/null < "$work/run.sql"
    did "applied $pending migrations"
fi
lap migrations

# 7. DATABASE_URL logs in over TCP (the password in the environment, never argv)
PGPASSWORD=$APP_PASSWORD psql -X -w -At -d "host=localhost port=5432 dbname=$DB user=$ROLE" \
    -c 'SELECT 1' >/dev/null
lap login-check
echo "floor: timings$timings"
echo "floor: changed=$changed"
