export * from './workload.js';
export * from './checkers.js';
