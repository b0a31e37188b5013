CREATE TABLE "provider_calls" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"operation" text NOT NULL,
	"status_code" integer,
	"error" text,
	"latency_ms" integer NOT NULL,
	"request_id" text,
	"response_id" text,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "cost_usd" numeric(20, 9);--> statement-breakpoint
CREATE INDEX "provider_calls_job_idx" ON "provider_calls" USING btree ("job_id","at");--> statement-breakpoint
CREATE INDEX "jobs_created_idx" ON "jobs" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "jobs_metadata_idx" ON "jobs" USING gin ("metadata" jsonb_path_ops);