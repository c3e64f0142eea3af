import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { StackLayout } from './config.js';
import { ensureDir, run } from './process.js';
import { VERSIONS, type GoBuild, type GoComponent } from './versions.js';

export type Log = (msg: string) => void;

export const PG_BIN = `/usr/lib/postgresql/${VERSIONS.postgresMajor}/bin`;
const APT_PACKAGES = [`postgresql-${VERSIONS.postgresMajor}`, 'redis-server', 'faketime', 'xz-utils'];
/** Regions from this index on run VERSIONS.postgresModern (see versions.ts). */
export const MODERN_PG_FROM_REGION = 2;

/** Where the newer PostgreSQL is unpacked: under the state dir, which the postgres user can traverse (the cache may sit under /root). */
function modernPgDir(layout: StackLayout): string {
  return join(layout.stateDir, 'pg-bin', `postgresql-${VERSIONS.postgresModern.version}`);
}

/** The PostgreSQL major version and bin directory of region `i`. */
export function pgFor(layout: StackLayout, i: number): { major: string; bin: string } {
  return i >= MODERN_PG_FROM_REGION ? { major: VERSIONS.postgresModern.major, bin: join(modernPgDir(layout), 'bin') } : { major: VERSIONS.postgresMajor, bin: PG_BIN };
}

/** The bin directory that runs a data directory initialised by `major` (for stopping a cluster of another version). */
export function pgBinForMajor(layout: StackLayout, major: string | undefined): string {
  if (major === VERSIONS.postgresModern.major) return join(modernPgDir(layout), 'bin');
  return major === undefined ? PG_BIN : `/usr/lib/postgresql/${major}/bin`;
}

/** The newer PostgreSQL's binaries, resolved from Maven Central once and unpacked per stack. */
export function ensureModernPostgres(layout: StackLayout, log: Log): string {
  const dir = modernPgDir(layout);
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  const mvn = which('mvn');
  if (!mvn) throw new Error('Maven is needed to fetch PostgreSQL binaries from Maven Central. Install it with: apt-get install -y maven');
  if (!which('xz')) throw new Error('xz is needed to unpack the PostgreSQL binaries. Install it with: apt-get install -y xz-utils');
  const v = VERSIONS.postgresModern;
  log(`fetching PostgreSQL ${v.version} binaries from Maven Central (first run only)`);
  const work = mkdtempSync(join(tmpdir(), 'regionsync-pg-'));
  try {
    run(mvn, ['-q', '-B', 'dependency:unpack', `-Dartifact=${v.group}:${v.artifact}:${v.version}:jar`, `-DoutputDirectory=${work}`], { what: `fetching PostgreSQL ${v.version}`, cwd: work });
    const archive = join(work, v.archive);
    if (!existsSync(archive)) throw new Error(`${v.archive} missing from ${v.artifact}-${v.version}.jar`);
    rmSync(dir, { recursive: true, force: true });
    ensureDir(dir);
    run('tar', ['-xJf', archive, '-C', dir], { what: `unpacking PostgreSQL ${v.version}` });
    // Readable and executable by the postgres user, whatever the umask.
    run('chmod', ['-R', 'a+rX', join(layout.stateDir, 'pg-bin')], { what: 'making the PostgreSQL binaries readable' });
    if (!existsSync(join(dir, 'bin', 'postgres'))) throw new Error(`PostgreSQL ${v.version}: bin/postgres missing after unpacking`);
    writeFileSync(marker, new Date().toISOString());
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

export function binPath(layout: StackLayout, c: GoComponent): string {
  const v = VERSIONS[c];
  return join(layout.cacheDir, 'bin', `${v.name}-${v.version}`);
}

export function kafkaLibDir(layout: StackLayout): string {
  return join(layout.cacheDir, `kafka-${VERSIONS.kafka.version}`, 'libs');
}

function which(cmd: string, extra: string[] = []): string | undefined {
  for (const candidate of extra) if (existsSync(candidate)) return candidate;
  const res = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const out = res.stdout.trim();
  return res.status === 0 && out ? out : undefined;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Debian packages: PostgreSQL, Redis, libfaketime. Installed with apt-get when we are root. */
export function ensureSystemPackages(log: Log): void {
  const missing: string[] = [];
  if (!existsSync(join(PG_BIN, 'postgres'))) missing.push(APT_PACKAGES[0]!);
  if (!which('redis-server')) missing.push('redis-server');
  if (!existsSync('/usr/bin/faketime')) missing.push('faketime');
  if (!which('xz')) missing.push('xz-utils');
  if (missing.length === 0) return;
  if (!isRoot() || !which('apt-get')) {
    throw new Error(`missing system packages: ${missing.join(', ')}. Install them with: sudo apt-get install -y ${missing.join(' ')} (Debian/Ubuntu), then run again.`);
  }
  log(`installing Debian packages: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { what: 'apt-get update', env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...APT_PACKAGES, 'postgresql-contrib'].filter((p, i, a) => a.indexOf(p) === i), { what: `apt-get install ${missing.join(' ')}`, env });
}

function goBinary(): string {
  const go = which('go', ['/usr/local/go/bin/go']);
  if (!go) throw new Error('the Go toolchain (1.25 or newer) is needed to build nats-server, toxiproxy, kubo and minio from the Go module proxy. Install it (apt-get install golang-go, or from go.dev) and run again.');
  return go;
}

export function ensureGoComponent(layout: StackLayout, c: GoComponent, log: Log): string {
  const target = binPath(layout, c);
  if (existsSync(target)) return target;
  const v: GoBuild = VERSIONS[c];
  log(`building ${v.name} ${v.version} from the Go module proxy (first run only; cached in ${join(layout.cacheDir, 'bin')})`);
  ensureDir(join(layout.cacheDir, 'bin'));
  const work = mkdtempSync(join(tmpdir(), `regionsync-build-${v.name}-`));
  try {
    const requires = [`${v.module} ${v.version}`, ...(v.extraRequires ?? [])].map((r) => `\t${r}\n`).join('');
    writeFileSync(join(work, 'go.mod'), `module regionsync.dev/build/${v.name}\n\ngo 1.25\n\nrequire (\n${requires})\n`);
    const tmpOut = join(work, v.name);
    run(goBinary(), ['build', '-trimpath', '-ldflags=-s -w', '-o', tmpOut, v.pkg], {
      what: `building ${v.name} ${v.version}`,
      cwd: work,
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' },
    });
    renameSync(tmpOut, target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return target;
}

export function javaBinary(): string {
  const java = which('java');
  if (!java) throw new Error('Java 17 or newer is needed to run Kafka. Install it with: apt-get install -y openjdk-17-jre-headless');
  return java;
}

/** Kafka broker jars resolved from Maven Central with Maven's dependency plugin. */
export function ensureKafka(layout: StackLayout, log: Log): string {
  const libs = kafkaLibDir(layout);
  const marker = join(libs, '.complete');
  if (existsSync(marker)) return libs;
  javaBinary();
  const mvn = which('mvn');
  if (!mvn) throw new Error('Maven is needed to fetch the Kafka jars from Maven Central. Install it with: apt-get install -y maven');
  const k = VERSIONS.kafka;
  log(`fetching Apache Kafka ${k.version} jars from Maven Central (first run only)`);
  const work = mkdtempSync(join(tmpdir(), 'regionsync-kafka-'));
  const [bg, ba, bv] = k.slf4jBinding.split(':');
  try {
    writeFileSync(join(work, 'pom.xml'), `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.regionsync</groupId><artifactId>kafka-runtime</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>${k.group}</groupId><artifactId>${k.artifact}</artifactId><version>${k.version}</version></dependency>
    <dependency><groupId>${bg}</groupId><artifactId>${ba}</artifactId><version>${bv}</version></dependency>
  </dependencies>
</project>
`);
    rmSync(libs, { recursive: true, force: true });
    ensureDir(libs);
    run(mvn, ['-q', '-B', 'dependency:copy-dependencies', `-DoutputDirectory=${libs}`, '-DincludeScope=runtime'], { what: 'fetching Kafka jars', cwd: work });
    if (!readdirSync(libs).some((f) => f.startsWith(`${k.artifact}-${k.version}`))) throw new Error(`Kafka jar ${k.artifact}-${k.version} missing after Maven resolution`);
    writeFileSync(marker, new Date().toISOString());
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return libs;
}

export function ensureInstalled(layout: StackLayout, log: Log): void {
  ensureSystemPackages(log);
  for (const c of ['natsServer', 'toxiproxy', 'minio', 'kubo'] as const) ensureGoComponent(layout, c, log);
  ensureKafka(layout, log);
  if (layout.regions.length > MODERN_PG_FROM_REGION) ensureModernPostgres(layout, log);
}
