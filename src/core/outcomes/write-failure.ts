/** A journal or report write that failed: the file and the file system's error. */
export interface WriteFailure {
  path: string;
  code: string;
  message: string;
}
