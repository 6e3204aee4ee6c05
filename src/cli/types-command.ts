import { DEFAULT_MAX_FILE_SIZE, SUPPORTED_EXTENSIONS } from '../core/files/file-types.js';
import { CONVENTIONS, RECOGNISED_MEDIA_TYPES } from '../core/inputs/media-type.js';
import { formatBytes } from './format.js';

/** The text of `u21-media types`: what Unit21 recognises and how file names map to it. */
export function typesText(): string {
  const width = Math.max(...CONVENTIONS.map((c) => c.words.length));
  return [
    'Media types Unit21 recognises (any other value is sent with a warning):',
    ...RECOGNISED_MEDIA_TYPES.map((t) => `  ${t}${t.startsWith('IMAGE_CHECK') ? '   (events)' : ''}`),
    '',
    'File-name conventions (image files only; case-insensitive; words split on _ - . space and camelCase):',
    ...CONVENTIONS.map((c) => `  ${c.words.padEnd(width)}  → ${c.mediaType}`),
    '  A sidecar <file>.json, --media-type, or a config rule wins over these; --no-infer turns them off.',
    '',
    `Supported file types: ${SUPPORTED_EXTENSIONS.join(', ')}`,
    `Size limit: ${formatBytes(DEFAULT_MAX_FILE_SIZE)} (${DEFAULT_MAX_FILE_SIZE} bytes) per file; --max-file-size changes it`,
    '',
  ].join('\n');
}
