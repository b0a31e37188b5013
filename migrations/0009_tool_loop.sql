ALTER TYPE "public"."job_status" ADD VALUE 'requires_action' BEFORE 'cancelling';--> statement-breakpoint
DROP INDEX "jobs_active_next_check_idx";--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "turn" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "max_turns" integer;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "required_action" jsonb;--> statement-breakpoint
CREATE INDEX "jobs_active_next_check_idx" ON "jobs" USING btree ("next_check_at") WHERE status not in ('completed', 'failed', 'cancelled', 'incomplete', 'expired');