-- chatplane schema, version 7, SQLite dialect: the model of each message.
--
-- chat_messages.model names the provider and model that wrote an assistant
-- message, "name/model" (docs/storage.md); null for user and tool messages
-- and for messages written before this version.

ALTER TABLE chat_messages ADD COLUMN model TEXT;
