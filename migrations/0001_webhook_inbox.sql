CREATE TYPE "public"."webhook_inbox_status" AS ENUM('received', 'waiting', 'applied', 'orphan', 'ignored');--> statement-breakpoint
CREATE TABLE "webhook_inbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"webhook_id" text NOT NULL,
	"event_id" text,
	"event_type" text NOT NULL,
	"response_id" text,
	"status" "webhook_inbox_status" DEFAULT 'received' NOT NULL,
	"job_id" text,
	"note" text,
	"payload" jsonb NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone,
	CONSTRAINT "webhook_inbox_webhook_id_unique" UNIQUE("webhook_id")
);
--> statement-breakpoint
CREATE INDEX "webhook_inbox_response_idx" ON "webhook_inbox" USING btree ("response_id");--> statement-breakpoint
CREATE INDEX "webhook_inbox_open_idx" ON "webhook_inbox" USING btree ("status","received_at") WHERE status in ('received', 'waiting');