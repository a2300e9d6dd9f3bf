-- backstop's state on PostgreSQL, schema 1: the SQLite tables mirrored for a database that
-- several nodes share. Every row carries its watch; each hot query has an index.
-- Bodies the store queries into are jsonb; opaque or large ones (evidence, scrape points)
-- are text. `seq` (identity) orders rows as SQLite's rowid does.

CREATE TABLE watches (
    name text PRIMARY KEY,
    body jsonb NOT NULL
);

CREATE TABLE observations (
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    watch text NOT NULL,
    deployment_id text,
    active boolean NOT NULL,
    body jsonb NOT NULL,
    verdict jsonb
);
-- load_watch (the open one), latest_observation and history of one watch: newest first.
CREATE INDEX observations_watch_seq ON observations (watch, seq DESC);
CREATE INDEX observations_watch_active ON observations (watch, seq DESC) WHERE active;
CREATE INDEX observations_deployment ON observations (watch, deployment_id);

CREATE TABLE quarantine (
    watch text NOT NULL,
    release text NOT NULL,
    reason text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (watch, release)
);

CREATE TABLE rollbacks (
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    observation_id text NOT NULL UNIQUE,
    watch text NOT NULL,
    deployment_id text,
    done boolean NOT NULL,
    body jsonb NOT NULL
);
CREATE INDEX rollbacks_watch_seq ON rollbacks (watch, seq DESC);
CREATE INDEX rollbacks_deployment ON rollbacks (watch, deployment_id);

CREATE TABLE outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    watch text NOT NULL,
    body jsonb NOT NULL,
    delivered boolean NOT NULL
);
CREATE INDEX outbox_watch_seq ON outbox (watch, seq);
CREATE INDEX outbox_undelivered ON outbox (watch, seq) WHERE NOT delivered;

CREATE TABLE inbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    watch text NOT NULL,
    body jsonb NOT NULL
);
CREATE INDEX inbox_watch_seq ON inbox (watch, seq);

CREATE TABLE seen_events (
    id text PRIMARY KEY,
    at timestamptz NOT NULL
);

CREATE TABLE seen_deployments (
    watch text NOT NULL,
    deployment_id text NOT NULL,
    PRIMARY KEY (watch, deployment_id)
);

CREATE TABLE evidence (
    id text PRIMARY KEY,
    watch text NOT NULL,
    body text NOT NULL
);
CREATE INDEX evidence_watch ON evidence (watch);

CREATE TABLE evidence_series (
    observation_id text NOT NULL,
    watch text NOT NULL,
    check_name text NOT NULL,
    at_ms bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (observation_id, check_name, at_ms)
);

CREATE TABLE meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE scrape_history (
    watch text NOT NULL,
    check_name text NOT NULL,
    fingerprint text NOT NULL,
    points text NOT NULL,
    PRIMARY KEY (watch, check_name)
);

-- The fleet: one row per node, refreshed by its heartbeat.
CREATE TABLE nodes (
    name text PRIMARY KEY,
    watches text[] NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

-- One lease per watch: who may write for it, under which fencing epoch, until when.
CREATE TABLE leases (
    watch text PRIMARY KEY,
    owner text,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
