export * from './erasure-cli.js';
