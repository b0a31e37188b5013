export * from './errors.ts';
export * from './keyring.ts';
export * from './provider.ts';
