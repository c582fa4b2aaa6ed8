// Every PD_* option in one typed table: it drives the commander flags, their
// help text, the precedence (flag, then environment, then default) and the
// markdown table in the docs (`pd options`).
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constant } from '../datapath/layout.js';
import { PdError } from './errors.js';
import { defaultSocketPath } from './paths.js';

/** Who reads an option: a `pd` subcommand, `pdrun`, or the C shim. */
export type Scope = 'controller' | 'pdrun' | 'client' | 'shim';

export type LogLevel = 'quiet' | 'info' | 'debug';
export type HugepageMode = 'auto' | 'never' | 'require';
export type CrossNetns = 'same-user' | 'any' | 'never';

interface Spec<T> {
  readonly env: `PD_${string}`;
  /** commander flag, e.g. `--ring-size <bytes>`; null for options with no flag */
  readonly flag: string | null;
  readonly defaultValue: (env: NodeJS.ProcessEnv) => T;
  /** the default as the docs show it */
  readonly defaultText: string;
  readonly parse: (raw: string) => T;
  readonly help: string;
  readonly scope: readonly Scope[];
}

function spec<T>(s: Spec<T>): Spec<T> {
  return s;
}

function bad(what: string, expected: string): never {
  throw new PdError('PD_E_OPTION', `${what}: ${expected}`);
}

const MIB = 1024 * 1024;

function parseSize(raw: string): number {
  const m = /^\s*(\d+)\s*([kKmM]?)[iI]?[bB]?\s*$/.exec(raw);
  if (!m) return NaN;
  const n = Number(m[1]);
  const unit = m[2]?.toLowerCase();
  return unit === 'k' ? n * 1024 : unit === 'm' ? n * MIB : n;
}

function intIn(lo: number, hi: number, unit = ''): (raw: string) => number {
  return (raw) => {
    const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < lo || n > hi) bad(raw, `expected an integer${unit} from ${lo} to ${hi}`);
    return n;
  };
}

function oneOf<T extends string>(values: readonly T[]): (raw: string) => T {
  return (raw) => {
    const v = raw.trim().toLowerCase();
    if (!(values as readonly string[]).includes(v)) bad(raw, `expected one of ${values.join(', ')}`);
    return v as T;
  };
}

/** A group name (from /etc/group) or a numeric gid. */
function parseGroup(raw: string): number {
  const v = raw.trim();
  if (/^\d+$/.test(v)) return Number(v);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    /* no /etc/group: names cannot be resolved */
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === v && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  return bad(JSON.stringify(raw), 'expected a group name from /etc/group or a numeric gid');
}

function nonEmpty(raw: string): string {
  if (raw.trim() === '') bad(JSON.stringify(raw), 'expected a path');
  return raw;
}

/** The package root: dist/control/options.js -> the directory holding dist/ and preload/. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

const RING_MIN = constant('RING_MIN');
const RING_MAX = constant('RING_MAX');

export const OPTIONS = {
  socket: spec<string>({
    env: 'PD_SOCKET',
    flag: '--socket <path>',
    defaultValue: (env) => defaultSocketPath(env),
    defaultText: '`$XDG_RUNTIME_DIR/pipedevice/pd.sock`, else `/tmp/pipedevice-$UID/pd.sock`',
    parse: (raw) => resolvePath(nonEmpty(raw)),
    help: 'controller session socket; the pid file, status socket and log sit next to it',
    scope: ['controller', 'pdrun', 'client', 'shim'],
  }),
  idleExit: spec<number>({
    env: 'PD_IDLE_EXIT',
    flag: '--idle-exit <seconds>',
    defaultValue: () => 60,
    defaultText: '60',
    parse: intIn(0, 31 * 24 * 3600, ' (seconds)'),
    help: 'the controller exits after this many seconds with no session; 0 = never',
    scope: ['controller', 'pdrun'],
  }),
  ringSize: spec<number>({
    env: 'PD_RING_SIZE',
    flag: '--ring-size <bytes>',
    defaultValue: () => 262144,
    defaultText: '262144 (256K)',
    parse: (raw) => {
      const n = parseSize(raw);
      if (!(Number.isSafeInteger(n) && n >= RING_MIN && n <= RING_MAX && (n & (n - 1)) === 0)) {
        bad(raw, `expected a power of two from ${RING_MIN} to ${RING_MAX} bytes (e.g. 262144 or 256K)`);
      }
      return n;
    },
    help: 'bytes per ring (one per direction of each connection), a power of two',
    scope: ['controller'],
  }),
  slotsPerArena: spec<number>({
    env: 'PD_SLOTS_PER_ARENA',
    flag: '--slots-per-arena <n>',
    defaultValue: () => 8,
    defaultText: '8',
    parse: intIn(1, 4096),
    help: 'connection slots an arena is sized for (rounded up to fill its 2 MiB pages)',
    scope: ['controller'],
  }),
  arenaQuotaMb: spec<number>({
    env: 'PD_ARENA_QUOTA_MB',
    flag: '--arena-quota-mb <MiB>',
    defaultValue: () => 1024,
    defaultText: '1024',
    parse: intIn(1, 1 << 30, ' (MiB)'),
    help: 'most arena memory shared with one process; beyond it its connections stay on TCP',
    scope: ['controller'],
  }),
  hugepages: spec<HugepageMode>({
    env: 'PD_HUGEPAGES',
    flag: '--hugepages <mode>',
    defaultValue: () => 'auto',
    defaultText: 'auto',
    parse: oneOf<HugepageMode>(['auto', 'never', 'require']),
    help: 'auto: hugepage-backed arenas when pages are free (vm.nr_hugepages), else ordinary memory; never: ordinary memory; ' +
      'require: hugepages only, connections stay on TCP (reason in pd status) when none are free',
    scope: ['controller'],
  }),
  socketGroup: spec<number | null>({
    env: 'PD_SOCKET_GROUP',
    flag: '--socket-group <group>',
    defaultValue: () => null,
    defaultText: 'unset (the user only)',
    parse: parseGroup,
    help: 'let this group (name or gid) connect to the session socket too: the socket becomes 0660 and its directory ' +
      'group-traversable (0710); the status socket stays the user\'s (see docs/security.md)',
    scope: ['controller'],
  }),
  crossNetns: spec<CrossNetns>({
    env: 'PD_CROSS_NETNS',
    flag: '--cross-netns <policy>',
    defaultValue: () => 'same-user',
    defaultText: 'same-user',
    parse: oneOf<CrossNetns>(['same-user', 'any', 'never']),
    help: 'pair the two ends of a connection in different network namespaces (containers) only when both processes ' +
      'have the same uid (same-user), always (any), or never; within one namespace ends always pair (see docs/security.md)',
    scope: ['controller'],
  }),
  log: spec<LogLevel>({
    env: 'PD_LOG',
    flag: '--log <level>',
    defaultValue: () => 'quiet',
    defaultText: 'quiet',
    parse: oneOf<LogLevel>(['quiet', 'info', 'debug']),
    help: 'stderr logging: quiet (warnings only), info (sessions, matches), debug (every message)',
    scope: ['controller', 'pdrun', 'shim'],
  }),
  preload: spec<string>({
    env: 'PD_PRELOAD',
    flag: '--preload <path>',
    defaultValue: () => join(packageRoot(), 'preload', 'libpd.so'),
    defaultText: '`<package>/preload/libpd.so`',
    parse: nonEmpty,
    help: 'the shim pdrun preloads (e.g. preload/libpd-asan.so for the sanitizer build)',
    scope: ['pdrun'],
  }),
  spinUs: spec<number>({
    env: 'PD_SPIN_US',
    flag: null,
    defaultValue: () => 100,
    defaultText: '100',
    parse: intIn(0, 1_000_000, ' of microseconds'),
    help: 'longest busy-wait before sleeping on a doorbell (adaptive below it); 0 = never spin',
    scope: ['shim'],
  }),
  fdReserve: spec<number | 'auto'>({
    env: 'PD_FD_RESERVE',
    flag: null,
    defaultValue: () => 'auto',
    defaultText: 'auto: an eighth of RLIMIT_NOFILE, 32 to 4096',
    parse: (raw) => (raw.trim() === 'auto' ? 'auto' : intIn(0, 1_048_576, ' of descriptors')(raw)),
    help: 'descriptors the shim leaves to the application: it keeps a connection on TCP rather than take its 5 ' +
      'descriptors (4 doorbells, a pidfd; and one per arena, kept to map it again after an exec) within this many of ' +
      'the soft RLIMIT_NOFILE',
    scope: ['shim'],
  }),
  noController: spec<boolean>({
    env: 'PD_NO_CONTROLLER',
    flag: null,
    defaultValue: () => false,
    defaultText: 'unset',
    parse: (raw) => raw !== '' && raw !== '0',
    help: 'set to 1 by pdrun when no controller could be reached: the shim stays passthrough and silent',
    scope: ['shim'],
  }),
} as const;

export type OptionKey = keyof typeof OPTIONS;
type ValueOf<K extends OptionKey> = ReturnType<(typeof OPTIONS)[K]['parse']>;
export type Options = { [K in OptionKey]: ValueOf<K> };

function keysFor(scope: Scope): OptionKey[] {
  return (Object.keys(OPTIONS) as OptionKey[]).filter((k) => OPTIONS[k].scope.includes(scope) && OPTIONS[k].flag !== null);
}

/** Adds the flags of every option of `scope` to a commander command. */
export function addOptionFlags(cmd: Command, scope: Scope): Command {
  for (const key of keysFor(scope)) {
    const s = OPTIONS[key];
    if (!s.flag) continue;
    const o = new Option(s.flag, `${s.help} [env ${s.env}, default ${s.defaultText.replace(/`/g, '')}]`);
    if (o.attributeName() !== key) throw new Error(`options: flag ${s.flag} does not name ${key}`);
    cmd.addOption(o);
  }
  return cmd;
}

/**
 * Resolves options: the flag (raw strings from commander) wins, then the
 * environment, then the default. Throws PdError naming the source of a bad value.
 */
export function resolveOptions<K extends OptionKey>(
  keys: readonly K[], flags: Readonly<Record<string, unknown>> = {}, env: NodeJS.ProcessEnv = process.env,
): Pick<Options, K> {
  const out: Partial<Options> = {};
  for (const key of keys) {
    const s = OPTIONS[key] as Spec<ValueOf<K>>;
    const flag = flags[key];
    const fromEnv = env[s.env];
    try {
      if (typeof flag === 'string') (out as Record<string, unknown>)[key] = s.parse(flag);
      else if (fromEnv !== undefined && fromEnv !== '') (out as Record<string, unknown>)[key] = s.parse(fromEnv);
      else (out as Record<string, unknown>)[key] = s.defaultValue(env);
    } catch (e) {
      if (!(e instanceof PdError)) throw e;
      const src = typeof flag === 'string' ? s.flag?.split(' ')[0] ?? key : s.env;
      throw new PdError('PD_E_OPTION', `${src}=${e.message}`);
    }
  }
  return out as Pick<Options, K>;
}

export function optionKeys(scope: Scope): OptionKey[] {
  return (Object.keys(OPTIONS) as OptionKey[]).filter((k) => OPTIONS[k].scope.includes(scope));
}

/** The options table in markdown, for the docs. */
export function renderOptionsMarkdown(): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = (Object.keys(OPTIONS) as OptionKey[]).map((k) => {
    const s = OPTIONS[k];
    const flag = s.flag ? `\`${s.flag.replace(/ <.*/, '')}\`` : '-';
    return `| \`${s.env}\` | ${flag} | ${esc(s.defaultText)} | ${s.scope.join(', ')} | ${esc(s.help)} |`;
  });
  return [
    '| variable | flag | default | read by | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    'A flag wins over its variable; the variable over the default.',
    '',
  ].join('\n');
}
