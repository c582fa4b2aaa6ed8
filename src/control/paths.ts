// Where the controller lives on disk. Everything hangs off the session socket path.
import { join } from 'node:path';

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg) return join(xdg, 'pipedevice', 'pd.sock');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return join('/tmp', `pipedevice-${uid}`, 'pd.sock');
}

export const pidFilePath = (socket: string): string => `${socket}.pid`;
export const statusSocketPath = (socket: string): string => `${socket}.status`;
export const logFilePath = (socket: string): string => `${socket}.log`;
