import { ensureTemplateDatabase } from '@longhaul/db/testing';
import { testDatabaseBaseUrl } from './env.ts';

/** Migrate the template database once per run; each test file clones it. */
export default async function setup(): Promise<void> {
  await ensureTemplateDatabase(testDatabaseBaseUrl());
}
