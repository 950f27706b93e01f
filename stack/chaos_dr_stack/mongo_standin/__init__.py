"""SecantusDB standing in for MongoDB where no ``mongo`` image can be had (the kind target built offline)."""
