/** A connection not made by then is given up (as undici's own connect timeout does), or at --timeout when that is shorter: to Unit21 and to a bucket. */
export const CONNECTION_TIMEOUT_MS = 10_000;
