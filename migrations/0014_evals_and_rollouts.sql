CREATE TYPE "public"."eval_status" AS ENUM('running', 'completed', 'cancelled', 'failed');--> statement-breakpoint
CREATE TYPE "public"."rollout_status" AS ENUM('running', 'paused', 'completed', 'rolled_back', 'aborted');--> statement-breakpoint
ALTER TYPE "public"."event_source" ADD VALUE 'eval';--> statement-breakpoint
CREATE TABLE "dataset_items" (
	"dataset_id" text NOT NULL,
	"version" integer NOT NULL,
	"index" integer NOT NULL,
	"variables" jsonb NOT NULL,
	"expected" jsonb,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "dataset_items_dataset_id_version_index_pk" PRIMARY KEY("dataset_id","version","index")
);
--> statement-breakpoint
CREATE TABLE "dataset_versions" (
	"dataset_id" text NOT NULL,
	"version" integer NOT NULL,
	"tenant_id" text NOT NULL,
	"item_count" integer NOT NULL,
	"note" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dataset_versions_dataset_id_version_pk" PRIMARY KEY("dataset_id","version")
);
--> statement-breakpoint
CREATE TABLE "datasets" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"latest_version" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "eval_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"eval_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"from_status" "eval_status",
	"to_status" "eval_status" NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "eval_results" (
	"eval_id" text NOT NULL,
	"version" integer NOT NULL,
	"item_index" integer NOT NULL,
	"repeat" integer NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"job_id" text,
	"grader_job_ids" jsonb,
	"grades" jsonb,
	"error" jsonb,
	"input_tokens" integer,
	"output_tokens" integer,
	"cost_usd" numeric(20, 9),
	"grader_cost_usd" numeric(20, 9),
	"latency_ms" integer,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "eval_results_eval_id_version_item_index_repeat_pk" PRIMARY KEY("eval_id","version","item_index","repeat")
);
--> statement-breakpoint
CREATE TABLE "evals" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"prompt_id" text NOT NULL,
	"versions" integer[] NOT NULL,
	"dataset_id" text NOT NULL,
	"dataset_version" integer NOT NULL,
	"graders" jsonb NOT NULL,
	"repeats" integer NOT NULL,
	"concurrency" integer NOT NULL,
	"status" "eval_status" DEFAULT 'running' NOT NULL,
	"error" jsonb,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"rerun_of" text,
	"next_check_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "prompt_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"prompt_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"rollout_id" text,
	"type" text NOT NULL,
	"traffic" jsonb,
	"current_version" integer NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rollouts" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"prompt_id" text NOT NULL,
	"definition" jsonb NOT NULL,
	"status" "rollout_status" NOT NULL,
	"step_index" integer DEFAULT 0 NOT NULL,
	"step_started_at" timestamp with time zone NOT NULL,
	"candidate_version" integer NOT NULL,
	"baseline_version" integer NOT NULL,
	"baseline_reference" jsonb,
	"last_figures" jsonb,
	"next_check_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
DROP INDEX "jobs_prompt_idx";--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "eval_id" text;--> statement-breakpoint
ALTER TABLE "dataset_versions" ADD CONSTRAINT "dataset_versions_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "datasets" ADD CONSTRAINT "datasets_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "eval_events" ADD CONSTRAINT "eval_events_eval_id_evals_id_fk" FOREIGN KEY ("eval_id") REFERENCES "public"."evals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "eval_results" ADD CONSTRAINT "eval_results_eval_id_evals_id_fk" FOREIGN KEY ("eval_id") REFERENCES "public"."evals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "evals" ADD CONSTRAINT "evals_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "evals" ADD CONSTRAINT "evals_prompt_id_prompts_id_fk" FOREIGN KEY ("prompt_id") REFERENCES "public"."prompts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "prompt_events" ADD CONSTRAINT "prompt_events_prompt_id_prompts_id_fk" FOREIGN KEY ("prompt_id") REFERENCES "public"."prompts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_prompt_id_prompts_id_fk" FOREIGN KEY ("prompt_id") REFERENCES "public"."prompts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "datasets_tenant_idx" ON "datasets" USING btree ("tenant_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "eval_events_eval_idx" ON "eval_events" USING btree ("eval_id","id");--> statement-breakpoint
CREATE INDEX "eval_results_active_idx" ON "eval_results" USING btree ("eval_id") WHERE status in ('running', 'grading');--> statement-breakpoint
CREATE INDEX "eval_results_pending_idx" ON "eval_results" USING btree ("eval_id","item_index","repeat","version") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "evals_tenant_idx" ON "evals" USING btree ("tenant_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "evals_created_idx" ON "evals" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "evals_due_idx" ON "evals" USING btree ("next_check_at") WHERE next_check_at is not null;--> statement-breakpoint
CREATE INDEX "prompt_events_prompt_idx" ON "prompt_events" USING btree ("prompt_id","id");--> statement-breakpoint
CREATE INDEX "rollouts_prompt_idx" ON "rollouts" USING btree ("prompt_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "rollouts_active_prompt_idx" ON "rollouts" USING btree ("prompt_id") WHERE status not in ('completed', 'rolled_back', 'aborted');--> statement-breakpoint
CREATE INDEX "rollouts_due_idx" ON "rollouts" USING btree ("next_check_at") WHERE next_check_at is not null;--> statement-breakpoint
CREATE INDEX "jobs_prompt_idx" ON "jobs" USING btree ("tenant_id","prompt_id","prompt_version","created_at");