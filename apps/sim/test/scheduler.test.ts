import { describe, expect, test } from 'vitest';
import { Scheduler } from '../src/scheduler.ts';
import { refedTimeouts } from './timers.ts';

describe('Scheduler', () => {
  test('runs due tasks in time order (ties in insertion order) with a fixed clock', () => {
    let now = 1_000;
    const ran: string[] = [];
    const scheduler = new Scheduler(
      () => now,
      (error) => {
        throw error;
      },
    );
    const times = [50, 10, 30, 10, 40, 20, 5];
    times.forEach((offset, i) => {
      scheduler.schedule(now + offset, () => ran.push(`${offset}:${i}`));
    });
    now += 25;
    scheduler.runDue();
    expect(ran).toEqual(['5:6', '10:1', '10:3', '20:5']);
    now += 100;
    scheduler.runDue();
    expect(ran.slice(4)).toEqual(['30:2', '40:4', '50:0']);
    expect(scheduler.size).toBe(0);
    scheduler.close();
  });

  test('keeps a single timer, fires on time and close() leaves no timer behind', async () => {
    const before = refedTimeouts();
    const scheduler = new Scheduler(Date.now, () => undefined);
    const fired: number[] = [];
    for (let i = 0; i < 500; i++) scheduler.schedule(Date.now() + 20 + (i % 10), () => fired.push(i));
    scheduler.schedule(Date.now() + 60_000, () => fired.push(-1));
    expect(refedTimeouts()).toBe(before + 1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(fired).toHaveLength(500);
    expect(scheduler.size).toBe(1);
    scheduler.close();
    expect(refedTimeouts()).toBe(before);
    scheduler.schedule(Date.now(), () => fired.push(-2));
    expect(scheduler.size).toBe(0);
  });

  test('a throwing task is reported and does not stop the others', () => {
    const errors: unknown[] = [];
    const scheduler = new Scheduler(
      () => 0,
      (error) => errors.push(error),
    );
    const ran: number[] = [];
    scheduler.schedule(0, () => {
      throw new Error('boom');
    });
    scheduler.schedule(0, () => ran.push(1));
    scheduler.runDue();
    expect(ran).toEqual([1]);
    expect(errors).toHaveLength(1);
    scheduler.close();
  });
});
