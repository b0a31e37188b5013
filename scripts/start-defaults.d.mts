/** Per app, the settings `npm start` adds to the environment (see start-defaults.mjs). */
export declare const COLOCATED_ENV: Readonly<Partial<Record<'sim' | 'api' | 'worker', Readonly<Record<string, string>>>>>;
