//! Which children a strategy stops and restarts, and in what order (`supervisor.erl`
//! `restart/2`, `split_child/2`). Pure: indexes into the children in start order.

use super::Strategy;

/// The children to terminate (in this order: reverse start order) and then to start (in this
/// order: start order) when child `failed` of `count` must be restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestartPlan {
    pub(crate) terminate: Vec<usize>,
    pub(crate) start: Vec<usize>,
}

pub(crate) fn plan(strategy: Strategy, failed: usize, count: usize) -> RestartPlan {
    match strategy {
        Strategy::OneForOne => RestartPlan {
            terminate: Vec::new(),
            start: vec![failed],
        },
        Strategy::OneForAll => RestartPlan {
            terminate: (0..count).rev().filter(|&i| i != failed).collect(),
            start: (0..count).collect(),
        },
        Strategy::RestForOne => RestartPlan {
            terminate: (failed + 1..count).rev().collect(),
            start: (failed..count).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::plan;
    use proptest::prelude::{
        Just, Strategy as _, prop_assert, prop_assert_eq, prop_oneof, proptest,
    };

    fn strategy() -> impl proptest::strategy::Strategy<Value = super::Strategy> {
        prop_oneof![
            Just(super::Strategy::OneForOne),
            Just(super::Strategy::OneForAll),
            Just(super::Strategy::RestForOne),
        ]
    }

    proptest! {
        #[test]
        fn plans_follow_the_otp_rules((count, failed) in (1usize..12).prop_flat_map(|n| (Just(n), 0..n)), strategy in strategy()) {
            let plan = plan(strategy, failed, count);
            // Terminations run in reverse start order, starts in start order.
            prop_assert!(plan.terminate.windows(2).all(|w| w[0] > w[1]));
            prop_assert!(plan.start.windows(2).all(|w| w[0] < w[1]));
            // The failed child is already gone: never terminated, always started.
            prop_assert!(!plan.terminate.contains(&failed));
            prop_assert!(plan.start.contains(&failed));
            // Everything terminated is started again; nothing else is touched.
            for i in &plan.terminate {
                prop_assert!(plan.start.contains(i));
            }
            prop_assert_eq!(plan.start.len(), plan.terminate.len() + 1);
            match strategy {
                super::Strategy::OneForOne => prop_assert_eq!(plan.start, vec![failed]),
                super::Strategy::OneForAll => prop_assert_eq!(plan.start.len(), count),
                // Earlier siblings are untouched.
                super::Strategy::RestForOne => prop_assert!(plan.start.iter().all(|&i| i >= failed)),
            }
        }
    }
}
