import { intConfig } from '../../vitest.shared.js';

export default intConfig();
