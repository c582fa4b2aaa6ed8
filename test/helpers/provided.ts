// Values global-setup.ts provides to the test files (vitest provide/inject).
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    buildErrors: string[];
  }
}
