// An app folder per fuzzing process, with scripts for tasks task0..task9
// (so that well-formed inputs get past the file checks into the graph
// checks); each input is written as the app's one description file.

use std::path::PathBuf;

pub fn app_dir(file: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jupiter-fuzz-{file}-{}", std::process::id()));
    if !dir.exists() {
        for sub in ["scripts", "tasks"] {
            std::fs::create_dir_all(dir.join(sub)).expect("app folder");
            for i in 0..10 {
                std::fs::write(
                    dir.join(sub).join(format!("task{i}.py")),
                    "def task(f, i, o):\n    return []\n",
                )
                .expect("script");
                std::fs::write(dir.join(sub).join(format!("task{i}.sh")), "#!/bin/sh\n").expect("script");
            }
        }
    }
    dir
}
