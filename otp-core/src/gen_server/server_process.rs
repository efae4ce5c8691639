//! A server's process: the header every process has, and its mailbox of [`Envelope`]s.

use std::sync::Arc;

use super::GenServer;
use super::envelope::Envelope;
use crate::ExitReason;
use crate::process::header::{AnyProcess, ProcessHeader};
use crate::process::mailbox::{Mailbox, MailboxState};

/// A server process: the shared header plus its typed mailbox, in one allocation.
pub(crate) struct ServerProcess<S: GenServer> {
    pub(crate) header: ProcessHeader,
    pub(crate) mailbox: Mailbox<Envelope<S>>,
}

impl<S: GenServer> AnyProcess for ServerProcess<S> {
    fn header(&self) -> &ProcessHeader {
        &self.header
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }

    fn close_mailbox(&self) -> Option<Box<dyn Send>> {
        Some(Box::new(self.mailbox.close()))
    }

    fn request_stop(&self, reason: ExitReason) -> bool {
        self.mailbox
            .send_stop_request(Envelope::Stop(reason))
            .is_ok()
    }

    fn mailbox_state(&self) -> Option<MailboxState> {
        Some(self.mailbox.state())
    }

    fn interrupt_init(&self) {
        // While `init` runs, its starter waits on the mailbox's waker (see `InitAsProcess`).
        self.mailbox.wake();
    }
}
