//! The optimizer registry: every method implements [`OptimizerMethod`] in its own module, and
//! one table in `optim/mod.rs` (`optimizer_registry!`) turns the list of methods into the
//! [`super::OptimizerConfig`] enum, its `"name"` tags and tagged deserialization, [`super::METHODS`]
//! (what `optiscope list`, the CLI's `--optimizer` and the explorer's menus show),
//! `default_for`, `validate`, `lr` and `build_on`. Adding an optimizer is its module and one line
//! of that table.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crate::config::MethodInfo;

use super::{ConfigError, Executor, Param};
use crate::device::OptimOps;

/// What every optimizer config provides. The host logic it builds is written once, generic over
/// the device ([`Executor`]).
pub trait OptimizerMethod:
    Default + Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned
{
    /// The `"name"` tag (the registry checks that it matches its table).
    const NAME: &'static str;
    /// One line: what it is and where it comes from.
    const SUMMARY: &'static str;
    /// Checks every field against what the method allows.
    fn validate(&self) -> Result<(), ConfigError>;
    /// The base learning rate.
    fn lr(&self) -> f64;
    /// Builds the executor on `dev` for `params` (validated already; names, shapes and roles are
    /// read, not the values).
    fn build_on<D: OptimOps + 'static>(
        &self,
        dev: &mut D,
        params: &[Param],
    ) -> Result<Box<dyn Executor<D>>, ConfigError>;
}

/// Generates the optimizer enum and everything derived from the list of methods:
/// `"tag" => Variant(ConfigType)` per line, in the order `optiscope list` shows them.
macro_rules! optimizer_registry {
    ($($(#[$doc:meta])* $tag:literal => $variant:ident($ty:ty)),* $(,)?) => {
        /// Every optimizer, as a config tagged by `"name"`.
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        #[serde(tag = "name")]
        pub enum OptimizerConfig {
            $($(#[$doc])* #[serde(rename = $tag)] $variant($ty),)*
        }

        crate::tagged::tagged_deserialize!(OptimizerConfig { $($tag => $variant),* });

        /// The methods, in the order `optiscope list` shows them.
        pub const METHODS: &[MethodInfo] = &[
            $(MethodInfo { name: $tag, summary: <$ty as OptimizerMethod>::SUMMARY },)*
        ];

        impl OptimizerConfig {
            /// The config of `name` with the reference defaults (AMUSE: `warmup_steps` must
            /// still be set).
            pub fn default_for(name: &str) -> Option<Self> {
                match name {
                    $($tag => Some(Self::$variant(<$ty>::default())),)*
                    _ => None,
                }
            }

            /// The `"name"` tag of this config.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $tag,)*
                }
            }

            /// The base learning rate.
            pub fn lr(&self) -> f64 {
                match self {
                    $(Self::$variant(c) => OptimizerMethod::lr(c),)*
                }
            }

            /// Checks every field against what the method allows.
            pub fn validate(&self) -> Result<(), ConfigError> {
                match self {
                    $(Self::$variant(c) => OptimizerMethod::validate(c),)*
                }
            }

            fn build_method<D: OptimOps + 'static>(
                &self,
                dev: &mut D,
                params: &[Param],
            ) -> Result<Box<dyn Executor<D>>, ConfigError> {
                match self {
                    $(Self::$variant(c) => OptimizerMethod::build_on(c, dev, params),)*
                }
            }
        }

        #[cfg(test)]
        #[test]
        fn registry_tags_are_the_methods_names() {
            $(assert_eq!(<$ty as OptimizerMethod>::NAME, $tag);)*
        }
    };
}

pub(crate) use optimizer_registry;

/// `impl OptimizerMethod` for a config whose inherent `validate` checks it and whose `lr` field
/// is its base learning rate: `optimizer_method!(Config, "name", "summary", |cfg, dev, params|
/// executor)`, the closure-like body building the boxed executor's value.
macro_rules! optimizer_method {
    ($ty:ty, $name:literal, $summary:literal, |$cfg:ident, $dev:ident, $params:ident| $build:expr) => {
        impl $crate::optim::OptimizerMethod for $ty {
            const NAME: &'static str = $name;
            const SUMMARY: &'static str = $summary;

            fn validate(&self) -> Result<(), $crate::optim::ConfigError> {
                <$ty>::validate(self)
            }

            fn lr(&self) -> f64 {
                self.lr
            }

            fn build_on<D: $crate::device::OptimOps + 'static>(
                &self,
                $dev: &mut D,
                $params: &[$crate::optim::Param],
            ) -> Result<Box<dyn $crate::optim::Executor<D>>, $crate::optim::ConfigError> {
                let $cfg = self;
                Ok(Box::new($build))
            }
        }
    };
}

pub(crate) use optimizer_method;
