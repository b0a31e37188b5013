ALTER TYPE "public"."event_source" ADD VALUE 'tool_executor';--> statement-breakpoint
CREATE TABLE "job_turns" (
	"job_id" text NOT NULL,
	"turn" integer NOT NULL,
	"tenant_id" text NOT NULL,
	"response_id" text,
	"status" text NOT NULL,
	"tool_calls" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"approval_requests" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"tool_outputs" jsonb,
	"approvals" jsonb,
	"usage" jsonb,
	"cost_usd" numeric(20, 9),
	"ended_at" timestamp with time zone NOT NULL,
	"answered_at" timestamp with time zone,
	"answered_by" text,
	CONSTRAINT "job_turns_job_id_turn_pk" PRIMARY KEY("job_id","turn")
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "tool_executor_url" text;--> statement-breakpoint
ALTER TABLE "job_turns" ADD CONSTRAINT "job_turns_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;