ALTER TYPE "public"."event_source" ADD VALUE 'cache';--> statement-breakpoint
CREATE TABLE "response_cache" (
	"tenant_id" text NOT NULL,
	"key" text NOT NULL,
	"source_job_id" text NOT NULL,
	"status" text NOT NULL,
	"ttl_seconds" integer NOT NULL,
	"prompt_id" text,
	"prompt_version" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	CONSTRAINT "response_cache_tenant_id_key_pk" PRIMARY KEY("tenant_id","key")
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "cached_from" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "cache_key" text;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "saved_usd" numeric(20, 9);--> statement-breakpoint
ALTER TABLE "prompt_versions" ADD COLUMN "cache" jsonb;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "cache_ttl_seconds" integer;--> statement-breakpoint
ALTER TABLE "response_cache" ADD CONSTRAINT "response_cache_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "response_cache" ADD CONSTRAINT "response_cache_source_job_id_jobs_id_fk" FOREIGN KEY ("source_job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "response_cache_source_idx" ON "response_cache" USING btree ("source_job_id");--> statement-breakpoint
CREATE INDEX "response_cache_expires_idx" ON "response_cache" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "jobs_cache_waiters_idx" ON "jobs" USING btree ("cached_from") WHERE status = 'pending' and cached_from is not null;