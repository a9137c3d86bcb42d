#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the real clients the tests talk to (kcat, the
# Python Kafka clients in a virtual environment, .venv, Apache Kafka's own jars, Go for the Go
# clients, and Chromium with chromedriver for the dashboard's browser test), starts the local PostgreSQL cluster and
# its test role if needed, then `cargo test --workspace`. Set TEST_DATABASE_URL to use another PostgreSQL instead.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# librdkafka (the services' client, built by cargo) links the system's OpenSSL; the TLS tests
# also run OpenSSL's own client (openssl s_client).
if ! pkg-config --exists openssl 2>/dev/null || ! command -v openssl >/dev/null 2>&1; then
  echo "== installing OpenSSL's headers and tools (librdkafka's TLS and SCRAM; openssl s_client)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config openssl
fi

# The chaos command's network faults: a network namespace (iproute2) and drop rules (nftables).
if ! command -v ip >/dev/null 2>&1 || ! command -v nft >/dev/null 2>&1; then
  echo "== installing iproute2 and nftables (the chaos command's network faults)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables
fi
# Where no namespace can be made (not root), the chaos test runs its other scenarios: say so
# here, where the output shows it (a passing test's own output is not shown).
if ! { ip netns add "probe-$$" && ip netns del "probe-$$"; } >/dev/null 2>&1; then
  echo "!!! NETWORK FAULTS WILL NOT RUN: no network namespace can be created here (the chaos test needs root) !!!"
fi

if ! command -v kcat >/dev/null 2>&1; then
  echo "== installing kcat (librdkafka 2.0.2, one of the clients the wire tests use)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat
fi

if ! command -v chromedriver >/dev/null 2>&1 || ! [ -x /usr/bin/chromium ]; then
  echo "== installing Chromium and chromedriver (the dashboard is tested in a real browser)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi

# Apache Kafka itself (its tools, its Java client, a KRaft cluster the services run on) comes from
# Maven Central through scripts/apache-kafka.sh; the Go clients (franz-go, sarama) from the Go
# module proxy. Both need their toolchains.
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  echo "== installing a JDK and Maven (Apache Kafka's tools and Java client are tested)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless maven
fi
if ! command -v go >/dev/null 2>&1; then
  echo "== installing Go (the franz-go and sarama clients are tested)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go
fi
echo "== Apache Kafka's jars (cached under target/apache-kafka once fetched)"
bash scripts/apache-kafka.sh fetch

# The Python clients go into a virtual environment of the project's (.venv): a stock Debian 12 or
# Ubuntu 24.04 refuses `pip install` into the system Python (externally managed environment).
# The broker's client tests find it there (or through SECKILL_PYTHON).
venv=.venv
if ! "$venv/bin/python3" -c 'import kafka, confluent_kafka' 2>/dev/null \
  || [ "$("$venv/bin/python3" -c 'import kafka, confluent_kafka as c; print(kafka.__version__, c.__version__)')" != "3.0.12 2.16.1" ]; then
  echo "== installing the Python Kafka clients into $venv"
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check \
    kafka-python==3.0.12 confluent-kafka==2.16.1
fi
export SECKILL_PYTHON="$PWD/$venv/bin/python3"

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "== installing PostgreSQL"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  fi
  cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    echo "no PostgreSQL cluster found (pg_lsclusters)" >&2
    exit 1
  fi
  if ! pg_lsclusters -h | awk 'NR==1 {print $4}' | grep -q online; then
    echo "== starting PostgreSQL $cluster"
    as_root pg_ctlcluster $cluster start
  fi
  port=$(pg_lsclusters -h | awk 'NR==1 {print $3}')
  # The tests create and drop a database each: a superuser role of their own.
  as_root su postgres -c "psql -q -p $port -c \"DO \\\$\\\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'seckill') THEN
        CREATE ROLE seckill LOGIN SUPERUSER PASSWORD 'seckill';
      END IF; END \\\$\\\$;\""
  export TEST_DATABASE_URL="postgres://seckill:seckill@127.0.0.1:$port/postgres"
fi

cargo test --workspace
