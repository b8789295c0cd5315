/* Links against an installed cancelio and checks that it is the version the
 * package files announced. */
#include <cancelio.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    const char *v = cio_version();

    printf("cancelio %s\n", v);
    return strcmp(v, EXPECTED_VERSION) == 0 ? 0 : 1;
}
