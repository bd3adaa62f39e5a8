#!/bin/bash
# Run once by the clickhouse image's entrypoint (/docker-entrypoint-initdb.d) on an empty data volume, as
# the admin account (CLICKHOUSE_USER). The pipeline's account may read and insert into the pipeline's
# database and nothing else: no CREATE, ALTER or DROP; the sink applies the schema as the admin account.
set -euo pipefail
password=${PL_CLICKHOUSE_PASSWORD//\\/\\\\}
password=${password//\'/\\\'}
clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE USER IF NOT EXISTS \`${PL_CLICKHOUSE_USER}\` IDENTIFIED WITH sha256_password BY '${password}';
GRANT SELECT, INSERT ON \`${CLICKHOUSE_DB}\`.* TO \`${PL_CLICKHOUSE_USER}\`;
SQL
