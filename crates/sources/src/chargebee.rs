//! chargebee: being written (issue 14).

use crate::Context;
use expansa_import::Problem;

pub fn convert(ctx: &mut Context) -> Result<(), Problem> {
    Err(ctx
        .input
        .problem("the chargebee converter is not written yet"))
}
