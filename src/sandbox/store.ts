import type { ObjectType } from '../core/inputs/objects.js';
import type { IncomingMedia } from './parse-body.js';

/** One media item the sandbox accepted, as Unit21 would keep it. */
export interface StoredMedia extends Omit<IncomingMedia, 'data'> {
  org: string;
  /** What the media is linked to: an entity or an event (by the org's ids), an alert or a case (by unit21_id). */
  objectType: ObjectType;
  objectId: string;
  format: 'multipart' | 'json';
  createdAt: string;
}

/** One request as the sandbox saw it, for logs and tests. */
export interface RequestRecord {
  method: string;
  path: string;
  /** 0 when the request was never answered (a stall or a reset). */
  status: number;
  files: number;
  /** The injected fault, e.g. '429', 'reset-after', 'rate-limit', 'stall'; absent for a normal request. */
  fault?: string;
  /** The client closed the connection before the whole answer was sent (it read only the start of a long body). */
  clientLeft?: true;
}
