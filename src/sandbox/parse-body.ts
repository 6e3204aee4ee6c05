import { createHash } from 'node:crypto';
import { Response } from 'undici';
import { contentTypeOf } from '../core/files/file-types.js';
import { isPlainObject } from '../core/files/sidecar.js';

/** A media item decoded from either body format, before it is stored. */
export interface IncomingMedia {
  name: string;
  mediaType: string | null;
  customData: Record<string, unknown> | null;
  sha256: string;
  bytes: number;
  /** The Content-Type of the multipart file part; null for the JSON format. */
  contentType: string | null;
  /** The bytes, until stored (they are not kept in memory afterwards). */
  data?: Uint8Array;
}

/** A 400 answer: the request is invalid the way Unit21 would say it. */
export class BadRequest extends Error {}

const FIELD_NAME = /^\w+$/;
// A character class, not a repeated group: a group overflows the regex stack on 5 MB strings.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const isBase64 = (s: string) => s.length % 4 === 0 && BASE64_CHARS.test(s);

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

function checkFile(name: string, bytes: number, maxFileSize: number, where: string) {
  if (!/\.[^.]+$/.test(name)) throw new BadRequest(`${where}: name "${name}" has no extension`);
  if (!contentTypeOf(name)) throw new BadRequest(`${where}: file type of "${name}" is not supported`);
  if (bytes === 0) throw new BadRequest(`${where}: file is empty`);
  if (bytes > maxFileSize) throw new BadRequest(`${where}: file is ${bytes} bytes, over the ${maxFileSize}-byte limit`);
}

/** Multipart: one file part per field name, optionally followed by a metadata JSON part under the same name. */
export async function parseMultipart(body: Buffer, contentType: string, maxFileSize: number): Promise<IncomingMedia[]> {
  let form;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch (error) {
    throw new BadRequest(`malformed multipart body: ${(error as Error).message}`);
  }
  const fields = [...new Set(form.keys())];
  const media: IncomingMedia[] = [];
  for (const field of fields) {
    if (!FIELD_NAME.test(field))
      throw new BadRequest(`field "${field}": names may hold only letters, digits and underscores`);
    const values = form.getAll(field);
    const files = values.filter((v) => typeof v !== 'string');
    const texts = values.filter((v): v is string => typeof v === 'string');
    if (files.length !== 1)
      throw new BadRequest(`field "${field}": expected exactly one file part, got ${files.length}`);
    if (texts.length > 1)
      throw new BadRequest(`field "${field}": expected at most one metadata part, got ${texts.length}`);
    const file = files[0]!;
    const data = new Uint8Array(await file.arrayBuffer());
    checkFile(file.name, data.length, maxFileSize, `field "${field}"`);
    let metadata: Record<string, unknown> = {};
    if (texts[0] !== undefined) {
      try {
        metadata = JSON.parse(texts[0]) as Record<string, unknown>;
      } catch {
        throw new BadRequest(`field "${field}": metadata part is not valid JSON`);
      }
      if (!isPlainObject(metadata)) throw new BadRequest(`field "${field}": metadata part must be a JSON object`);
    }
    const { media_type: mediaType, ...customData } = metadata;
    if (mediaType !== undefined && typeof mediaType !== 'string')
      throw new BadRequest(`field "${field}": media_type must be a string`);
    media.push({
      name: file.name,
      mediaType: mediaType ?? null,
      customData: Object.keys(customData).length > 0 ? customData : null,
      sha256: sha256(data),
      bytes: data.length,
      contentType: file.type || null,
      data,
    });
  }
  if (media.length === 0) throw new BadRequest('no file parts in the request');
  return media;
}

/** JSON: a top-level array of `{media (base64), name, media_type?, custom_data?}`. */
export function parseJson(body: Buffer, maxFileSize: number): IncomingMedia[] {
  let items: unknown;
  try {
    items = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadRequest('body is not valid JSON');
  }
  if (!Array.isArray(items)) throw new BadRequest('body must be a JSON array of media objects');
  if (items.length === 0) throw new BadRequest('body holds no media');
  return items.map((item, index) => {
    const where = `item ${index}`;
    if (!isPlainObject(item)) throw new BadRequest(`${where}: must be an object`);
    const { media, name, media_type: mediaType, custom_data: customData } = item;
    if (typeof media !== 'string' || media.length === 0) throw new BadRequest(`${where}: "media" is required (base64)`);
    if (!isBase64(media))
      throw new BadRequest(`${where}: "media" is not standard padded base64 (no line breaks, no data: prefix)`);
    if (typeof name !== 'string' || name.length === 0) throw new BadRequest(`${where}: "name" is required`);
    if (mediaType !== undefined && typeof mediaType !== 'string')
      throw new BadRequest(`${where}: "media_type" must be a string`);
    if (customData !== undefined && !isPlainObject(customData))
      throw new BadRequest(`${where}: "custom_data" must be an object`);
    const data = Buffer.from(media, 'base64');
    checkFile(name, data.length, maxFileSize, where);
    return {
      name,
      mediaType: mediaType ?? null,
      customData: customData && Object.keys(customData).length > 0 ? customData : null,
      sha256: sha256(data),
      bytes: data.length,
      contentType: null,
      data,
    };
  });
}
