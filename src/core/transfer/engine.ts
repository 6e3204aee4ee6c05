import type { Dispatcher } from 'undici';
import { jsonBody } from '../body/json.js';
import { multipartBody } from '../body/multipart.js';
import { entityMediaUrl } from '../hosts.js';
import { forEachLimit } from '../for-each-limit.js';
import type { FailedEvent, UploadedEvent, UploadEvent, UploadSummary } from '../events.js';
import type { PlannedFile } from '../plan.js';
import { put } from './client.js';

export type BodyFormat = 'multipart' | 'json';

export interface TransferSettings {
  apiRoot: string;
  org: string;
  apiKey: string;
  format: BodyFormat;
  concurrency: number;
  dispatcher: Dispatcher;
  signal?: AbortSignal;
  onEvent: (event: UploadEvent) => void;
}

/** Counts a transfer adds to the run's summary. */
export type TransferTally = Pick<UploadSummary, 'uploaded' | 'failed' | 'not_sent' | 'retries' | 'bytes' | 'possibly_duplicated' | 'stopped'>;

const isAuthRefusal = (status: number | null) => status === 401 || status === 403;

/** Sends every planned file, at most `concurrency` at once; a refused key stops the run at once. */
export async function transfer(files: readonly PlannedFile[], settings: TransferSettings): Promise<TransferTally> {
  const tally: TransferTally = { uploaded: 0, failed: 0, not_sent: 0, retries: 0, bytes: 0, possibly_duplicated: 0 };
  // Aborts in-flight requests when the key is refused, and follows the caller's signal.
  const stopAll = new AbortController();
  const signal = settings.signal ? AbortSignal.any([settings.signal, stopAll.signal]) : stopAll.signal;
  let attempted = 0;

  await forEachLimit(
    files,
    settings.concurrency,
    async (file) => {
      attempted++;
      const event = await sendOne(file, settings, signal);
      if (event.event === 'uploaded') {
        tally.uploaded++;
        tally.bytes += file.bytes;
      } else {
        if (isAuthRefusal(event.status) && !tally.stopped) {
          tally.stopped = 'auth';
          stopAll.abort();
        }
        tally.failed++;
      }
      settings.onEvent(event);
    },
    () => signal.aborted,
  );
  tally.not_sent = files.length - attempted;
  return tally;
}

async function sendOne(file: PlannedFile, settings: TransferSettings, signal: AbortSignal): Promise<UploadedEvent | FailedEvent> {
  const url = entityMediaUrl(settings.apiRoot, settings.org, file.entityId);
  const body = settings.format === 'json' ? jsonBody([file]) : multipartBody([file]);
  const failed = (status: number | null, errorCode: string | null, message: string): FailedEvent => ({
    event: 'failed',
    path: file.path,
    entity_id: file.entityId,
    status,
    error_code: errorCode,
    message,
    attempts: 1,
  });
  try {
    const response = await put(url, body, { apiKey: settings.apiKey, dispatcher: settings.dispatcher, signal });
    if (response.status >= 200 && response.status < 300) {
      return {
        event: 'uploaded',
        path: file.path,
        entity_id: file.entityId,
        media_type: file.mediaType ?? null,
        bytes: file.bytes,
        attempts: 1,
      };
    }
    return failed(response.status, response.errorCode, response.message);
  } catch (error) {
    const err = error as Error & { code?: string };
    if (signal.aborted) return failed(null, 'aborted', 'the run stopped before this upload finished');
    return failed(null, err.code ?? 'network_error', err.message);
  }
}
