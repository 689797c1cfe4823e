//! Starting and stopping llama-server. TODO(owner): not built yet.
