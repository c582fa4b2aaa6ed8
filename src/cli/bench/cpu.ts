// CPU seconds: what cpuwrap reports for a process tree it waited for, and
// /proc/PID/stat for a process that outlives the run (the controller).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Rusage {
  user: number;
  sys: number;
  maxrssKb: number;
  status: number;
}

/** cpuwrap's line "utime_s stime_s maxrss_kb status"; null when absent or garbled. */
export function readRusageFile(file: string): Rusage | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const f = text.trim().split(/\s+/).map(Number);
  if (f.length !== 4 || f.some((x) => !Number.isFinite(x))) return null;
  return { user: f[0]!, sys: f[1]!, maxrssKb: f[2]!, status: f[3]! };
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
    const n = Number(r.stdout?.trim());
    clkTck = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clkTck;
}

/** utime+stime of a live process in seconds (threads included), or null when it is gone. */
export function procCpuSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // the command name may hold spaces and parentheses: fields start after the last ')'
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields 14 and 15 of proc(5) (utime, stime) are 12 and 13 after the name and state
  const ticks = Number(f[11]) + Number(f[12]);
  return Number.isFinite(ticks) ? ticks / ticksPerSecond() : null;
}
