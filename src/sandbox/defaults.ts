// Their own module: `sandbox --help` shows them without loading the server.

/** The key the sandbox takes unless given another: a key for the local sandbox only, shown freely. */
export const SANDBOX_API_KEY = 'sandbox-key';

/** The org the sandbox's key has access to unless given another. */
export const SANDBOX_ORG = 'sandbox';
