export { readVersion } from '../core/version.js';
