//! PLACEHOLDER: the Dust simulator is being written (helper A). Replace this file entirely.
