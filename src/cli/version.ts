export { readVersion } from '../core/shared/version.js';
