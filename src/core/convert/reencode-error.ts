/** Why an image could not be made into what Unit21 takes: the file fails with this message. */
export class ReencodeError extends Error {}
