// Errors the user sees. Each has a stable code and a message that says what to do.

export type PdErrorCode =
  | 'PD_E_OPTION' // a PD_* variable or flag has a bad value
  | 'PD_E_SOCKET_PATH' // the socket path is unusable (too long, unsafe directory, not a socket)
  | 'PD_E_ALREADY_RUNNING' // another controller answers at the socket
  | 'PD_E_NO_CONTROLLER' // nobody answers at the socket
  | 'PD_E_STATUS' // the status answer was unreadable
  | 'PD_E_STOP_TIMEOUT' // the controller did not exit after SIGTERM
  | 'PD_E_USAGE'; // bad command line

export class PdError extends Error {
  constructor(readonly code: PdErrorCode, message: string) {
    super(message);
    this.name = 'PdError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
