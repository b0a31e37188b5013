CREATE TYPE "public"."batch_status" AS ENUM('building', 'uploaded', 'validating', 'in_progress', 'finalizing', 'completed', 'failed', 'expired', 'cancelling', 'cancelled');--> statement-breakpoint
ALTER TYPE "public"."event_source" ADD VALUE 'batch';--> statement-breakpoint
CREATE TABLE "batch_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"batch_id" text NOT NULL,
	"from_status" "batch_status",
	"to_status" "batch_status" NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "batches" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"model" text NOT NULL,
	"status" "batch_status" DEFAULT 'building' NOT NULL,
	"provider_batch_id" text,
	"input_file_id" text,
	"provider_key_id" text,
	"output_file_id" text,
	"error_file_id" text,
	"job_count" integer NOT NULL,
	"bytes" integer NOT NULL,
	"request_counts" jsonb,
	"error" jsonb,
	"create_attempts" integer DEFAULT 0 NOT NULL,
	"next_check_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"submitted_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"reconciled_at" timestamp with time zone,
	CONSTRAINT "batches_provider_batch_id_unique" UNIQUE("provider_batch_id")
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "processing" text DEFAULT 'background' NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "batch_id" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "service_tier" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "flex_fallback" text;--> statement-breakpoint
ALTER TABLE "batch_events" ADD CONSTRAINT "batch_events_batch_id_batches_id_fk" FOREIGN KEY ("batch_id") REFERENCES "public"."batches"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "batches" ADD CONSTRAINT "batches_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "batch_events_batch_idx" ON "batch_events" USING btree ("batch_id","id");--> statement-breakpoint
CREATE INDEX "batches_tenant_idx" ON "batches" USING btree ("tenant_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "batches_created_idx" ON "batches" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "batches_due_idx" ON "batches" USING btree ("next_check_at") WHERE reconciled_at is null;--> statement-breakpoint
CREATE INDEX "jobs_batch_waiting_idx" ON "jobs" USING btree ("tenant_id","model","created_at") WHERE processing = 'batch' and batch_id is null and status = 'pending';--> statement-breakpoint
CREATE INDEX "jobs_batch_idx" ON "jobs" USING btree ("batch_id") WHERE batch_id is not null;